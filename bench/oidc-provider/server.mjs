// oidc-provider as the benchmark's reference: opaque access tokens in the in-memory store.
// Usage: node server.mjs <port> <number of tokens> <tokens file> [refresh]
// Without a 4th argument: introspection enabled, a client that may introspect, and <number>
// client-credentials access tokens written to <tokens file>.
// With `refresh`: refresh-token rotation at /token. A client `partner` / `partner-secret`
// (client_secret_basic), and <number> refresh tokens, each of its own account and grant, written
// to <tokens file>. Every refresh consumes the token and answers with a new one.
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const [port, count, tokensFile, mode] = [
  Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5],
];
const issuer = `http://127.0.0.1:${port}`;

function introspectionProvider() {
  return new Provider(issuer, {
    clients: [
      {
        client_id: 'resource-server',
        client_secret: 'resource-server-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'rooster huiswerk cijfers',
      },
    ],
    scopes: ['rooster', 'huiswerk', 'cijfers'],
    features: {
      // Every caller may introspect, as in our own setup where resource servers may.
      introspection: { enabled: true, allowedPolicy: async () => true },
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
    },
    ttl: { ClientCredentials: 3600 },
  });
}

async function mintClientCredentials(provider) {
  const client = await provider.Client.find('resource-server');
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const token = new provider.ClientCredentials({ client, scope: 'rooster huiswerk' });
    tokens.push(await token.save());
  }
  return tokens;
}

// The stock in-memory adapter is an LRU of 1000 entries, and every refresh adds at least two
// (the new refresh token and the access token), so with a few hundred chains the grants and the
// chain heads would be evicted mid-run and refreshes would fail with invalid_grant. Same adapter
// code, only a larger store (STORE_SIZE entries, default 2,000,000; entries still expire by TTL).
function largeMemoryAdapter(size) {
  const store = new LRU({ maxSize: size });
  return (model) => new MemoryAdapter(model, store);
}

const SCOPE = 'openid offline_access rooster huiswerk';

function refreshProvider() {
  return new Provider(issuer, {
    adapter: largeMemoryAdapter(Number(process.env.STORE_SIZE || 2_000_000)),
    clients: [
      {
        client_id: 'partner',
        client_secret: 'partner-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://partner.example/cb'],
        scope: SCOPE,
      },
    ],
    scopes: SCOPE.split(' '),
    // Every account is just its id as `sub`.
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    rotateRefreshToken: true,
    features: { devInteractions: { enabled: false } },
    ttl: { AccessToken: 3600, IdToken: 3600, RefreshToken: 86400, Grant: 14 * 86400 },
  });
}

// One account and one grant per chain, as after <count> users each went through the
// authorization code flow: reuse of a consumed refresh token revokes its whole grant, so
// chains must not share one. The grant holds the OIDC scopes the refresh tokens carry.
async function mintRefreshTokens(provider) {
  const client = await provider.Client.find('partner');
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const accountId = `leerling-${i}`;
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      client,
      accountId,
      grantId,
      scope: SCOPE,
      gty: 'authorization_code',
      authTime: now,
      iat: now,
      expiresWithSession: false,
    });
    tokens.push(await token.save());
  }
  return tokens;
}

const refresh = mode === 'refresh';
if (mode !== undefined && !refresh) throw new Error(`unknown mode ${mode}, expected refresh`);
const provider = refresh ? refreshProvider() : introspectionProvider();
const tokens = refresh ? await mintRefreshTokens(provider) : await mintClientCredentials(provider);
writeFileSync(tokensFile, `${tokens.join('\n')}\n`);
provider.listen(port, '127.0.0.1', () => console.log('ready'));
