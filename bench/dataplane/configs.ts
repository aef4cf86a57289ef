// Configuration files for the benchmark's nginx origin and the nginx and HAProxy pairs that stand in the sidecars' places (one worker each, upstream keep-alive, no logs, pid and temp files in the run's own directory); pure text, never throws.

/** The origin's ports (the same in every chain) and what each proxy pair listens on. */
export const PORTS = {
  origin: { h1: 8080, h2: 8082, grpc: 9000, tcp: 9100 },
  /** Client-side proxy on the client's 127.0.0.1 (explicit), server-side proxy on the server's address. */
  nginx: { client: { h1: 18080, h2: 18082, grpc: 19000, tcp: 19100 }, server: { h1: 28080, h2: 28082, grpc: 29000, tcp: 29100 } },
  haproxy: { client: { h1: 38080, h2: 38082, grpc: 39000, tcp: 39100 }, server: { h1: 48080, h2: 48082, grpc: 49000, tcp: 49100 } },
} as const;

export const BODY_BYTES = 1024;
const BODY = 'x'.repeat(BODY_BYTES);
/** Keep-alive limits high enough that no connection is closed during a run (nginx closes after 1000 requests by default). */
const FOREVER = 'keepalive_timeout 600s;\n    keepalive_requests 100000000;';

function nginxHead(dir: string, name: string, stream: boolean): string {
  return `${stream ? 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n' : ''}worker_processes 1;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.error.log warn;
events { worker_connections 16384; }
`;
}

function nginxHttpCommon(dir: string): string {
  return `    access_log off;
    default_type text/plain;
    ${FOREVER}
    client_body_temp_path ${dir}/tmp-body;
    proxy_temp_path ${dir}/tmp-proxy;
    fastcgi_temp_path ${dir}/tmp-fastcgi;
    uwsgi_temp_path ${dir}/tmp-uwsgi;
    scgi_temp_path ${dir}/tmp-scgi;`;
}

/** The origin: 1 KB answers to any GET over HTTP/1.1 (h1 port) and cleartext HTTP/2 with prior knowledge (h2 port). */
export function nginxOrigin(dir: string, name: string): string {
  const o = PORTS.origin;
  return `${nginxHead(dir, name, false)}http {
${nginxHttpCommon(dir)}
    server {
        listen ${o.h1} reuseport backlog=4096;
        location / { return 200 "${BODY}"; }
    }
    server {
        listen ${o.h2} http2 backlog=4096;
        location / { return 200 "${BODY}"; }
    }
}
`;
}

const PROXY_HTTP = `proxy_pass http://h1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;`;

function upstream(name: string, target: string): string {
  return `    upstream ${name} {
        server ${target};
        keepalive 512;
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }`;
}

/**
 * One side of the nginx pair. The client side listens on 127.0.0.1 and proxies to the server side at
 * `peer`; the server side listens on `self` and proxies to the origin on 127.0.0.1. HTTP/2 is accepted
 * downstream on the client side only: nginx proxies HTTP/1.1 upstream (grpc_pass is its one HTTP/2 upstream).
 */
export function nginxProxy(dir: string, name: string, side: 'client' | 'server', self: string, peer: string, stream: boolean): string {
  const p = PORTS.nginx;
  const o = PORTS.origin;
  const client = side === 'client';
  const listen = (port: number): string => `${client ? '127.0.0.1' : self}:${port}`;
  const h1Target = client ? `${peer}:${p.server.h1}` : `127.0.0.1:${o.h1}`;
  const grpcTarget = client ? `${peer}:${p.server.grpc}` : `127.0.0.1:${o.grpc}`;
  const tcpTarget = client ? `${peer}:${p.server.tcp}` : `127.0.0.1:${o.tcp}`;
  const ports = client ? p.client : p.server;
  return `${nginxHead(dir, name, stream)}http {
${nginxHttpCommon(dir)}
${upstream('h1', h1Target)}
${upstream('grpc', grpcTarget)}
    server {
        listen ${listen(ports.h1)} backlog=4096;
        location / {
            ${PROXY_HTTP}
        }
    }
${client ? `    server {
        listen ${listen(ports.h2)} http2 backlog=4096;
        location / {
            ${PROXY_HTTP}
        }
    }
` : ''}    server {
        listen ${listen(ports.grpc)} http2 backlog=4096;
        location / { grpc_pass grpc://grpc; }
    }
}
${stream ? `stream {
    server {
        listen ${listen(ports.tcp)} backlog=4096;
        proxy_pass ${tcpTarget};
    }
}
` : ''}`;
}

/** One side of the HAProxy pair: HTTP/1.1, HTTP/2 (both sides), gRPC (HTTP/2 both sides) and TCP, one thread. */
export function haproxyProxy(side: 'client' | 'server', self: string, peer: string): string {
  const p = PORTS.haproxy;
  const o = PORTS.origin;
  const client = side === 'client';
  const ports = client ? p.client : p.server;
  const bind = (port: number): string => `${client ? '127.0.0.1' : self}:${port}`;
  const target = (key: keyof typeof o): string => (client ? `${peer}:${p.server[key]}` : `127.0.0.1:${o[key]}`);
  const http = (key: 'h1' | 'h2' | 'grpc', h2: boolean): string => `frontend fe_${key}
    bind ${bind(ports[key])}${h2 ? ' proto h2' : ''}
    default_backend be_${key}

backend be_${key}
    http-reuse always
    server s1 ${target(key)}${h2 ? ' proto h2' : ''}
`;
  return `global
    nbthread 1
    maxconn 8000

defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout tunnel 600s
    timeout http-keep-alive 600s

${http('h1', false)}
${http('h2', true)}
${http('grpc', true)}
frontend fe_tcp
    mode tcp
    bind ${bind(ports.tcp)}
    default_backend be_tcp

backend be_tcp
    mode tcp
    server s1 ${target('tcp')}
`;
}
