// The split example, part 3: a service calling the API with its own credentials. tokenClient()
// gets a token (finding the token endpoint from the issuer's metadata), caches it, and adds it.

import { tokenClient } from 'express-client-credentials';

export async function callReports(options: { issuer: string; api: string; clientId: string; clientSecret: string }): Promise<unknown[]> {
  const client = tokenClient({ issuer: options.issuer, clientId: options.clientId, clientSecret: options.clientSecret, scope: 'read' });
  const answers: unknown[] = [];
  for (let call = 1; call <= 3; call++) {
    const res = await client.fetch(`${options.api}/api/reports`);
    answers.push({ call, status: res.status, body: await res.json() });
  }
  return answers;
}

if (require.main === module) {
  callReports({
    issuer: process.env.OAUTH_ISSUER || 'http://127.0.0.1:4000',
    api: process.env.API_URL || 'http://127.0.0.1:4001',
    clientId: process.env.OAUTH_CLIENT_ID || 'reports-caller',
    clientSecret: process.env.OAUTH_CLIENT_SECRET ?? '', // tokenClient() refuses an empty secret with a clear message
  }).then(
    (answers) => answers.forEach((answer) => console.log(JSON.stringify(answer))),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
