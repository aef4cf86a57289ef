// Istio's helloworld sample service: GET /hello answers "Hello version: <SERVICE_VERSION>, instance: <HOSTNAME>"; unknown paths 404.

import { listenPort, sendJson, sendText, serve } from '../common/app.ts';

const version = process.env.SERVICE_VERSION || 'v1';
const instance = process.env.HOSTNAME || 'localhost';

serve('helloworld', listenPort(5000), (_req, res, url) => {
  if (url.pathname === '/hello') return sendText(res, 200, `Hello version: ${version}, instance: ${instance}\n`);
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Helloworld is healthy' });
  return sendText(res, 404, 'Not Found\n');
});
