// Node preload (`node -r scripts/loopback.js ...`) that keeps every TCP server of the
// process on 127.0.0.1. scripts/test-servers.sh loads it into kinesis-local, which has
// no host setting and would otherwise listen on all interfaces (plain and TLS port).
//
// Every form of net.Server.prototype.listen is rewritten to the options form with
// host 127.0.0.1, whatever host (or none) the caller asked for:
//   listen(), listen(cb), listen(port), listen(port, cb), listen(port, host[, backlog][, cb]),
//   listen(port, backlog[, cb]), listen({ port, host, ... }[, cb]).
// http, https and tls servers inherit this listen. Not TCP, left as they are: a Unix
// socket or named pipe (listen(path) or { path }) and an existing handle or fd.
'use strict';

const net = require('net');

const HOST = '127.0.0.1';
const original = net.Server.prototype.listen;

function isPortLike(value) {
  return (
    value === undefined ||
    value === null ||
    typeof value === 'number' ||
    (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
  );
}

function isHandle(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    ('_handle' in value || 'fd' in value) &&
    !('port' in value)
  );
}

function loopbackArgs(args) {
  const first = args[0];

  // listen({ port, host, ... }[, cb])
  if (first !== null && typeof first === 'object' && !isHandle(first)) {
    if (first.path !== undefined && first.path !== null) return args; // Unix socket
    return [{ ...first, host: HOST }, ...args.slice(1)];
  }

  // listen() and listen(cb): a random port on all interfaces by default.
  if (typeof first === 'function' || args.length === 0) {
    return [{ port: 0, host: HOST }, ...args];
  }

  // listen(port[, host][, backlog][, cb])
  if (isPortLike(first)) {
    const options = { port: first === null || first === undefined ? 0 : Number(first), host: HOST };
    const rest = [];
    for (const arg of args.slice(1)) {
      if (typeof arg === 'function') rest.push(arg);
      else if (typeof arg === 'number' && options.backlog === undefined) options.backlog = arg;
      // a host string (or anything else) is dropped: the host is always HOST
    }
    return [options, ...rest];
  }

  // listen(path[, backlog][, cb]) or listen(handle[, backlog][, cb]): not TCP.
  return args;
}

net.Server.prototype.listen = function listen(...args) {
  const rewritten = loopbackArgs(args);
  if (rewritten !== args && process.env.ESM_SIM_LOOPBACK_QUIET !== '1') {
    const options = rewritten[0];
    process.stderr.write(`loopback.js: listen forced to ${options.host}:${options.port}\n`);
  }
  return original.apply(this, rewritten);
};
