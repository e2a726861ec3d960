'use strict';
// The Node peer for `make bench`: the proxy a developer would write by hand
// with PropelAuth's own Express library. Same route and policy as authgate's
// bench config (min role Admin on the org from the path), the same identity
// header, and a keep-alive pool to the same backend, so that the comparison
// measures the stack and not a missing feature.
//
// Environment: PORT, UPSTREAM (http://127.0.0.1:P), VERIFIER_KEY_FILE, ISSUER.
// Start with --max-http-header-size=65536: a 50-org token is ~38 KB of header
// and Node's default limit is 16 KB.
const fs = require('fs');
const http = require('http');
const express = require('express');
const { initAuth } = require('@propelauth/express');
const { createProxyMiddleware } = require('http-proxy-middleware');

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`node-peer: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const port = Number(need('PORT'));
const upstream = need('UPSTREAM');
const verifierKey = fs.readFileSync(need('VERIFIER_KEY_FILE'), 'utf8');
const issuer = need('ISSUER');

// Manual metadata: no fetch from the auth URL, as with authgate's manual key.
const auth = initAuth({
  authUrl: issuer,
  apiKey: 'bench-unused',
  manualTokenVerificationMetadata: { verifierKey, issuer },
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = createProxyMiddleware({
  target: upstream,
  agent,
  xfwd: false,
  on: {
    proxyReq: (proxyReq, req) => {
      proxyReq.setHeader('X-User', JSON.stringify(req.user));
      if (req.org) proxyReq.setHeader('X-Org', JSON.stringify(req.org));
    },
  },
});

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.get(
  '/api/org/:orgId/items',
  auth.requireOrgMemberWithMinimumRole({ minimumRequiredRole: 'Admin' }),
  proxy,
);

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`node-peer listening on 127.0.0.1:${port}`);
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
