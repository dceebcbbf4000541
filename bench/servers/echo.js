// Echo servers for statews's benchmarks, in one Node process (one core).
//
// Listens on 127.0.0.1, ephemeral ports, and prints ONE JSON line on stdout once all
// three listen: {"ws": port, "ws_deflate": port, "tcp": port, "pid": pid, "bufferutil": bool}.
//
// - ws:         WebSocket echo (the `ws` package), permessage-deflate OFF.
// - ws_deflate: WebSocket echo with permessage-deflate ON (ws defaults: zlib level,
//               context takeover, threshold 0 so that every message is compressed).
// - tcp:        raw TCP echo of length-prefixed messages (the benchmark's "limit"): a
//               message is a 2-byte big-endian length and that many bytes; length 0xFFFF
//               is an escape, followed by a 4-byte big-endian length (for the 16 MiB
//               message). Each whole message is sent back with its prefix, as a WebSocket
//               echo server sends back each whole message.
//
// `bufferutil` (a native addon, prebuilt binaries inside its npm package) is what `ws`
// masks and unmasks with when it is installed: without it, unmasking a 16 MiB message
// in JavaScript takes ~50 ms and the server, not the client, sets the pace.
//
// Invariants: every message is echoed whole, in order, on the connection it came from;
// the process exits when its stdin closes (the runner dies => the server dies).
'use strict';

const net = require('net');
const { WebSocketServer } = require('ws');

const HOST = '127.0.0.1';
const MAX_PAYLOAD = 64 * 1024 * 1024;

function wsEcho(perMessageDeflate) {
  const wss = new WebSocketServer({
    host: HOST,
    port: 0,
    maxPayload: MAX_PAYLOAD,
    perMessageDeflate: perMessageDeflate ? { threshold: 0 } : false,
    clientTracking: false,
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  return wss;
}

// Length-prefixed echo. Chunks are kept in a list and joined once per message, so a
// 16 MiB message costs linear time.
function tcpEcho() {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let chunks = [];
    let buffered = 0;
    let need = -1; // payload length of the message being read; -1: header not read yet
    let headerSize = 0;
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      buffered += chunk.length;
      for (;;) {
        if (need < 0) {
          if (buffered < 2) return;
          let head = chunks[0];
          if (head.length < 6 && chunks.length > 1) {
            head = Buffer.concat(chunks);
            chunks = [head];
          }
          const short = head.readUInt16BE(0);
          if (short === 0xffff) {
            if (buffered < 6) return;
            need = head.readUInt32BE(2);
            headerSize = 6;
          } else {
            need = short;
            headerSize = 2;
          }
        }
        const total = headerSize + need;
        if (buffered < total) return;
        const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
        socket.write(all.subarray(0, total));
        const rest = all.subarray(total);
        chunks = rest.length ? [rest] : [];
        buffered = rest.length;
        need = -1;
      }
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, HOST);
  return server;
}

function hasNativeMasking() {
  try {
    return require('bufferutil').mask !== require('bufferutil/fallback').mask;
  } catch {
    return false;
  }
}

function portOf(server) {
  return new Promise((resolve) => {
    const address = server.address();
    if (address) resolve(address.port);
    else server.once('listening', () => resolve(server.address().port));
  });
}

async function main() {
  const servers = { ws: wsEcho(false), ws_deflate: wsEcho(true), tcp: tcpEcho() };
  const ports = {};
  for (const [name, server] of Object.entries(servers)) ports[name] = await portOf(server);
  const info = { ...ports, pid: process.pid, bufferutil: hasNativeMasking() };
  process.stdout.write(JSON.stringify(info) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

main();
