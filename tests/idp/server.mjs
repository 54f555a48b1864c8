// Throwaway OpenID Connect provider for the botserver test suite.
//
// It wraps the `oidc-provider` package and adds a deliberately plain login page so that the
// whole authorization-code flow can be driven by an HTTP client that does not run JavaScript.
// Everything is configured through environment variables; see `tests/support/idp.py`.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

const ZITADEL_ROLES = 'urn:zitadel:iam:org:project:roles';

function env(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

function listEnv(name) {
  return env(name, '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function intEnv(name, fallback) {
  const raw = env(name, undefined);
  if (raw === undefined) return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const HOST = '127.0.0.1';
const PORT = intEnv('IDP_PORT', 0);
if (!PORT) {
  throw new Error('IDP_PORT is required');
}
const ISSUER = env('IDP_ISSUER', `http://${HOST}:${PORT}`).replace(/\/+$/, '');
if (new URL(ISSUER).pathname !== '/') {
  throw new Error('IDP_ISSUER must not contain a path');
}
const CLIENT_ID = env('IDP_CLIENT_ID', 'botserver');
const CLIENT_SECRET = env('IDP_CLIENT_SECRET', 'botserver-secret');
const REDIRECT_URIS = listEnv('IDP_REDIRECT_URIS');
const POST_LOGOUT_REDIRECT_URIS = listEnv('IDP_POST_LOGOUT_REDIRECT_URIS');
const ID_TOKEN_TTL = intEnv('IDP_TTL_IDTOKEN', 3600);
if (REDIRECT_URIS.length === 0) {
  throw new Error('IDP_REDIRECT_URIS must list at least one redirect URI');
}

// Test accounts. The login name doubles as the subject identifier.
const ACCOUNTS = {
  alice: {
    password: 'alice-password',
    claims: {
      email: 'alice@example.org',
      email_verified: true,
      name: 'Alice Admin',
      given_name: 'Alice',
      family_name: 'Admin',
      preferred_username: 'alice',
      roles: ['admin'],
      [ZITADEL_ROLES]: { admin: { orgid: 'example.org' } },
    },
  },
  bob: {
    password: 'bob-password',
    claims: {
      email: 'bob@example.org',
      email_verified: true,
      name: 'Bob User',
      given_name: 'Bob',
      family_name: 'User',
      preferred_username: 'bob',
      roles: ['user'],
      [ZITADEL_ROLES]: { user: { orgid: 'example.org' } },
    },
  },
  carol: {
    password: 'carol-password',
    claims: {
      email: 'carol@example.org',
      email_verified: true,
      name: 'Carol Support',
      given_name: 'Carol',
      family_name: 'Support',
      preferred_username: 'carol',
      roles: ['support', 'editor'],
      [ZITADEL_ROLES]: { support: { orgid: 'example.org' }, editor: { orgid: 'example.org' } },
    },
  },
};

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
}

function escapeHtml(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      client_name: 'botserver (tests)',
      redirect_uris: REDIRECT_URIS,
      post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // Either method is accepted for a confidential client; this one is advertised.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  scopes: ['openid', 'profile', 'email'],
  claims: {
    openid: ['sub', 'roles', ZITADEL_ROLES],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Put every granted claim into the ID token, not only into the userinfo response.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  jwks: { keys: [signingKey()] },
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    // Cookies are scoped by host, not port: prefixed names keep them apart from the app's own
    // cookies when both run on 127.0.0.1.
    names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_resume' },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 120,
    IdToken: ID_TOKEN_TTL,
    Interaction: 3600,
    Session: 3600,
    Grant: 3600,
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = page(
          'Sign out',
          `${form.replace('</form>', '')}
<input type="hidden" name="logout" value="yes">
<button type="submit" id="logout">Sign out</button>
</form>`,
        );
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<p id="signed-out">You have been signed out.</p>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
      .join('\n');
    ctx.body = page('Error', rows);
  },
  async findAccount(_ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...structuredClone(account.claims) };
      },
    };
  },
};

// Imported only now, after the signing key exists: with oidc-provider loaded first, node 20
// now and then stalls for good inside generateKeyPairSync/export at start-up.
const { default: Provider } = await import('oidc-provider');
const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`idp server_error: ${err?.stack ?? err}\n`);
});

function loginForm(uid, { login = '', error = '' } = {}) {
  const message = error ? `<p class="error" id="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  return page(
    'Sign in',
    `${message}<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Username</label>
<input type="text" id="login" name="login" value="${escapeHtml(login)}" autocomplete="username">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" id="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="abort">Cancel</button>
</form>`,
  );
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantConsent(req, res, details) {
  const {
    prompt: { details: missing },
    params,
    session,
    grantId,
  } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const savedId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { consent: { grantId: savedId } },
    { mergeWithLastSubmission: true },
  );
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, page('Error', `<p id="error">${escapeHtml(err.message)}</p>`));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p id="error">interaction mismatch</p>'));
    return;
  }

  if (action === 'abort' && req.method === 'POST') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  const promptName = details.prompt.name;
  if (promptName === 'consent') {
    // Consent is granted automatically for the single trusted test client.
    await grantConsent(req, res, details);
    return;
  }
  if (promptName !== 'login') {
    send(res, 501, page('Error', `<p id="error">unsupported prompt ${escapeHtml(promptName)}</p>`));
    return;
  }

  if (req.method === 'GET') {
    send(res, 200, loginForm(uid, { login: details.params.login_hint ?? '' }));
    return;
  }
  if (req.method !== 'POST') {
    res.statusCode = 405;
    res.end();
    return;
  }

  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const password = form.get('password') ?? '';
  const account = Object.hasOwn(ACCOUNTS, login) ? ACCOUNTS[login] : undefined;
  if (!account || account.password !== password) {
    send(res, 401, loginForm(uid, { login, error: 'Invalid username or password.' }));
    return;
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: login, amr: ['pwd'] } },
    { mergeWithLastSubmission: false },
  );
}

const providerCallback = provider.callback();
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?$/;

const server = createServer((req, res) => {
  const { pathname } = new URL(req.url, ISSUER);
  const match = INTERACTION_PATH.exec(pathname);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  handleInteraction(req, res, match[1], match[2] ?? '').catch((err) => {
    process.stderr.write(`idp interaction error: ${err?.stack ?? err}\n`);
    if (!res.headersSent) {
      send(res, 500, page('Error', `<p id="error">${escapeHtml(err.message)}</p>`));
    } else {
      res.end();
    }
  });
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(PORT, HOST, () => {
  process.stdout.write(`IDP READY ${ISSUER}\n`);
});
