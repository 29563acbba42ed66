/**
 * `leeway start [--policies DIR] [--listen HOST:PORT] [--admin HOST:PORT]`: the proxy.
 * Flags win over env vars (LEEWAY_POLICIES, LEEWAY_LISTEN, LEEWAY_ADMIN, LEEWAY_LOG_LEVEL).
 * SIGHUP reloads the policy (a bad one is logged and the old one stays); SIGTERM and SIGINT
 * stop accepting, drain for settings.proxy.timeouts.drainMs and exit 0.
 */
import { parseCommandArgs, UsageError } from './args.js';
import { createLogger } from '../log/logger.js';
import { createLeeway } from '../proxy/leeway.js';
import { isLeewayError } from '../errors.js';
import { FdDestination } from '../log/fd-destination.js';
import { createUsageAccounting } from '../accounting/leeway-accounting.js';
import { deferredInterceptor, registerCaRoutes, setupInterception } from '../tls/interception.js';

/** How long a stopping proxy waits for its last access lines to be written. */
const ACCESS_LOG_EXIT_WAIT_MS = 2000;

export async function run(args: string[]): Promise<number> {
  let values: { policies?: string | undefined; listen?: string | undefined; admin?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseCommandArgs(args, {
      policies: { type: 'string' },
      listen: { type: 'string' },
      admin: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    }));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`leeway start: ${error.message}`);
      return 2;
    }
    throw error;
  }
  if (values.help === true) {
    console.log('Usage: leeway start [--policies DIR] [--listen HOST:PORT] [--admin HOST:PORT]\n\nEnv: LEEWAY_POLICIES, LEEWAY_LISTEN, LEEWAY_ADMIN, LEEWAY_LOG_LEVEL');
    return 0;
  }
  const logger = createLogger({ level: process.env.LEEWAY_LOG_LEVEL ?? 'info' });
  const policies = values.policies ?? process.env.LEEWAY_POLICIES ?? './policies';
  // Active minutes, quotas, /metrics, the status page and the access log (issue 5).
  // Access lines on stdout through their own asynchronous destination: batches of lines written
  // as bytes, never one write per request; what is left is written synchronously at exit.
  const accessLogDestination = new FdDestination(1, { onError: (error) => logger.error({ err: error }, 'access log: writing to stdout failed; lines are being lost') });
  const usage = createUsageAccounting({ logger, accessLogDestination });
  // Signals are caught from here on and acted upon once the proxy is up. Caught only after it, a
  // SIGTERM sent on the 'leeway listening' line could still find no handler and kill the process
  // undrained (the default action), as could a SIGHUP at any time during startup.
  const early = new Set<NodeJS.Signals>();
  const holdSignal = (signal: NodeJS.Signals): void => void early.add(signal);
  const held: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of held) process.on(signal, holdSignal);
  const releaseSignals = (): void => {
    for (const signal of held) process.off(signal, holdSignal);
  };
  // The CA paths live in the policy, which createLeeway loads: the interceptor is set just after.
  const interceptor = deferredInterceptor();
  let leeway;
  try {
    leeway = await createLeeway({
      policies,
      listen: values.listen ?? process.env.LEEWAY_LISTEN ?? '127.0.0.1:3128',
      admin: values.admin ?? process.env.LEEWAY_ADMIN ?? '127.0.0.1:9464',
      logger,
      accounting: usage.accounting,
      interceptor,
    });
    usage.attach(leeway);
    const tls = await setupInterception(leeway.policy.settings, {
      logger,
      onMint: () => usage.metrics?.certificateMinted(),
      onHandshakeFailure: (_host, reason) => usage.metrics?.handshakeFailure(reason),
    });
    if (tls !== undefined) {
      interceptor.set(tls.interceptor);
      registerCaRoutes(leeway, tls.ca.certPem);
      usage.metrics?.setCertificateCacheSize(() => tls.store.size);
    }
    await leeway.listen();
  } catch (error) {
    releaseSignals();
    const message = error instanceof Error ? error.message : String(error);
    logger.error({ code: isLeewayError(error) ? error.code : undefined }, message);
    console.error(`leeway start: ${message}`);
    return 1;
  }

  // The access lines and the log's own last lines, waited for up to ACCESS_LOG_EXIT_WAIT_MS.
  // pino's destination writes asynchronously: at exit it writes what it holds synchronously, and
  // a line still in an asynchronous write then landed after the ones logged after it ('leeway
  // stopped' before 'stopping', two times in three on a pipe), or not at all.
  const linesWritten = (): Promise<unknown> =>
    Promise.race([
      Promise.all([accessLogDestination.whenWritten(), new Promise<void>((resolve) => logger.flush(() => resolve()))]),
      new Promise((resolve) => setTimeout(resolve, ACCESS_LOG_EXIT_WAIT_MS).unref()),
    ]);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: draining in-flight requests');
    leeway.close().then(
      async () => {
        // The last access lines, written before exit rather than raced against it.
        usage.flush();
        await linesWritten();
        process.exit(0);
      },
      async (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        await linesWritten();
        process.exit(1);
      },
    );
  };
  const reload = (): void => {
    logger.info('SIGHUP: reloading policies');
    leeway.reload().then(
      (result) => usage.policyReloaded(result.ok ? 'success' : 'failure'),
      (error: unknown) => {
        usage.policyReloaded('failure');
        logger.error({ err: error }, 'reload failed');
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reload);
  releaseSignals();
  // What came during startup, now that there is a proxy to act on.
  if (early.has('SIGHUP')) reload();
  const first = held.find((signal) => signal !== 'SIGHUP' && early.has(signal));
  if (first !== undefined) stop(first);
  // Keep running: the listeners hold the event loop.
  return -1;
}
