/**
 * `node dist/test/apiserver/main.js [--http] [--dir DIR] [--port N] [--verbose]`: starts the
 * API server double, prints the kubeconfig path (`export KUBECONFIG=...`) and runs until
 * interrupted. For a local demo: `kubectl --kubeconfig PATH apply -k manifests/`.
 */
import { startApiServer } from './index.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  const dir = flag(args, '--dir');
  const port = flag(args, '--port');
  const api = await startApiServer({
    tls: !args.includes('--http'),
    ...(dir ? { dir } : {}),
    ...(port ? { port: Number(port) } : {}),
    ...(args.includes('--verbose') ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
  });
  process.stdout.write(`API server double listening on ${api.url}\nexport KUBECONFIG=${api.kubeconfigPath}\n`);
  const shutdown = (): void => {
    void api.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
