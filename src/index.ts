/**
 * The library entry point: `import { createLeeway } from 'leeway'`. Attach Leeway's handlers to
 * your own `http.Server`, or let it listen; plug in identity-aware accounting and TLS
 * interception through the typed seams. See docs/embedding.md.
 */
export { createLeeway, parseHostPort } from './proxy/leeway.js';
export type { Leeway, LeewayOptions, LeewayAddresses, LeewayHandlers, ReloadResult, HostPort } from './proxy/leeway.js';
export type { Interceptor, InterceptTarget, InnerHandlers } from './proxy/interceptor.js';
// TLS interception with your own CA (docs/embedding.md, "TLS interception").
export { setupInterception, deferredInterceptor, registerCaRoutes, CA_PEM_PATH, CA_CRT_PATH } from './tls/interception.js';
export type { Interception, InterceptionOptions } from './tls/interception.js';
export { createTlsInterceptor } from './tls/interceptor.js';
export type { TlsInterceptor, TlsInterceptorOptions, HandshakeFailureReason } from './tls/interceptor.js';
export { CertificateStore } from './tls/certificate-store.js';
export type { CertificateStoreOptions } from './tls/certificate-store.js';
export { loadCa, generateCa, writeCa } from './tls/ca.js';
export type { LoadedCa, GeneratedCa, GenerateCaOptions } from './tls/ca.js';
export { noopAccounting } from './proxy/account.js';
export type { Accounting, RequestRecord, TunnelActivity, PageEvent, PageKind, PageOutcome, TrafficKind, EnforcedAction } from './proxy/account.js';
export type { Identity } from './proxy/identify.js';
export type { AdminHandler } from './admin/server.js';
export { AdminServer } from './admin/server.js';
export type { LocalRoute } from './proxy/local-routes.js';
export { loadPolicy, formatProblem, decide } from './policy/index.js';
export type { LoadResult, PolicyProblem, CompiledPolicy, Decision, RequestFacts, Settings, UsageView } from './policy/index.js';
export { NO_USAGE } from './policy/index.js';
export { LeewayError, ERROR_CODES, isLeewayError } from './errors.js';
export type { LeewayErrorCode } from './errors.js';
export { createLogger, silentLogger } from './log/logger.js';
export type { Logger } from './log/logger.js';
