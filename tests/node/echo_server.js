// Node's `ws` as an echo peer for statews' interop tests (tests/test_deflate_interop.py).
//
// Usage: node echo_server.js '<JSON list of perMessageDeflate settings, or false>'
// Listens on 127.0.0.1, one ephemeral port per entry, prints {"ports": [...]} on one
// line once all listen, echoes every message as it came (text as text), and exits when
// its standard input closes, so that it never outlives the test process.
'use strict';

const { WebSocketServer } = require('ws');

const configs = JSON.parse(process.argv[2] || '[false]');
const servers = configs.map(
  (perMessageDeflate) =>
    new Promise((resolve, reject) => {
      const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate });
      server.on('connection', (socket) => {
        socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
        // A client that breaks the protocol is closed by ws; the server must live on.
        socket.on('error', (error) => process.stderr.write(`echo_server: ${error.message}\n`));
      });
      server.on('listening', () => resolve(server.address().port));
      server.on('error', reject);
    })
);

Promise.all(servers).then(
  (ports) => process.stdout.write(JSON.stringify({ ports }) + '\n'),
  (error) => {
    process.stderr.write(`echo_server: ${error}\n`);
    process.exit(1);
  }
);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
