// The ws README's broadcast idiom ("Server broadcast"), with a POST /broadcast.
// Run: node server.js 18082
'use strict';
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 18082);
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/broadcast') {
    res.writeHead(404);
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const data = Buffer.concat(chunks).toString();
    wss.clients.forEach(function each(client) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data);
      }
    });
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"sent":true}');
  });
});
const wss = new WebSocketServer({ server, path: '/ws' });
server.listen(port, '127.0.0.1');
