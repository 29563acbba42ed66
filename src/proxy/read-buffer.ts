/**
 * The one buffer origin sockets read into with `onread` (tunnels and the forward action's
 * upstream connections): a read takes whatever the kernel holds, up to 1 MiB, in one syscall and
 * one callback. Every callback copies its bytes out before it returns, and callbacks run one at a
 * time on the event loop, so all those sockets can share it.
 */
export const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);
