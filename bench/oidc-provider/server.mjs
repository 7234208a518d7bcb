// oidc-provider as the benchmark's reference: opaque access tokens in the in-memory store,
// introspection enabled, a client that may introspect.
// Usage: node server.mjs <port> <number of tokens> <tokens file>
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, count, tokensFile] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
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

const client = await provider.Client.find('resource-server');
const tokens = [];
for (let i = 0; i < count; i += 1) {
  const token = new provider.ClientCredentials({ client, scope: 'rooster huiswerk' });
  tokens.push(await token.save());
}
writeFileSync(tokensFile, `${tokens.join('\n')}\n`);
provider.listen(port, '127.0.0.1', () => console.log('ready'));
