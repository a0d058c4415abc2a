/**
 * The proxy configurations of docs/recipes/*.md, generated from one place: the interop tests
 * run nginx, HAProxy and Caddy with exactly this text (their own ports and paths filled in),
 * and each test checks that the recipe's code block is this text with the documented values.
 * Nothing here runs anything: pure string building.
 */

/** Paths as the recipes use them: the proxy's identity from the agent, trust files built by crl-refresh. */
export const DOC_PATHS = {
  identityDir: '/etc/gatehouse/gateway',
  cert: '/etc/gatehouse/gateway/cert.pem',
  key: '/etc/gatehouse/gateway/key.pem',
  root: '/etc/gatehouse/gateway/ca.pem',
  bundle: '/etc/gatehouse/trust/ca-bundle.pem',
  crl: '/etc/gatehouse/trust/crl.pem',
  upstream: '127.0.0.1:9000',
  serverName: 'gateway.acme.internal',
} as const;

// ------------------------------------------------------------------ nginx

export interface NginxRecipe {
  listen: string;
  serverName: string;
  cert: string;
  key: string;
  bundle: string;
  crl: string;
  upstream: string;
}

export const NGINX_DOC: NginxRecipe = {
  listen: '443',
  serverName: DOC_PATHS.serverName,
  cert: DOC_PATHS.cert,
  key: DOC_PATHS.key,
  bundle: DOC_PATHS.bundle,
  crl: DOC_PATHS.crl,
  upstream: DOC_PATHS.upstream,
};

/** The `server { }` block of docs/recipes/nginx.md (it goes inside `http { }`, e.g. /etc/nginx/conf.d/). */
export function nginxServerBlock(r: NginxRecipe): string {
  return `server {
    listen ${r.listen} ssl;
    server_name ${r.serverName};

    # This proxy's own identity, written and renewed by \`gatehouse agent\` (role gateway).
    ssl_certificate     ${r.cert};
    ssl_certificate_key ${r.key};
    # nginx 1.22 leaves TLS 1.3 out of its default list.
    ssl_protocols       TLSv1.2 TLSv1.3;

    # Clients need a certificate from the Gatehouse CA: root + issuing intermediate.
    ssl_client_certificate ${r.bundle};
    ssl_verify_client      on;
    ssl_verify_depth       2;
    # Both CRLs (intermediate and root) in PEM, read at start and on reload only.
    ssl_crl                ${r.crl};

    location / {
        proxy_pass http://${r.upstream};
        proxy_set_header Host $host;
        # proxy_set_header replaces a copy the client sent; header names with "_" are
        # dropped by nginx's default ignore_invalid_headers.
        proxy_set_header X-Client-Subject $ssl_client_s_dn;
        proxy_set_header X-Client-Verify  $ssl_client_verify;
    }
}
`;
}

/** The whole nginx.conf the test runs: the recipe's server block inside a minimal main config. */
export function nginxTestConfig(r: NginxRecipe, prefix: string): string {
  const indented = nginxServerBlock(r)
    .trimEnd()
    .split('\n')
    .map((l) => (l ? `    ${l}` : l))
    .join('\n');
  return `pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log info;
events { worker_connections 256; }
http {
    access_log ${prefix}/access.log;
    client_body_temp_path ${prefix}/tmp-body;
    proxy_temp_path ${prefix}/tmp-proxy;
    fastcgi_temp_path ${prefix}/tmp-fastcgi;
    uwsgi_temp_path ${prefix}/tmp-uwsgi;
    scgi_temp_path ${prefix}/tmp-scgi;
${indented}
}
`;
}

// ------------------------------------------------------------------ HAProxy

export interface HaproxyRecipe {
  /** The `log` target of the global section. */
  log: string;
  /** The runtime API socket (stats socket … level admin). */
  socket: string;
  bind: string;
  /** Certificate chain then key, one file (HAProxy's `crt` wants both). */
  pem: string;
  bundle: string;
  crl: string;
  upstream: string;
}

export const HAPROXY_DOC: HaproxyRecipe = {
  log: '/dev/log local0',
  socket: '/run/haproxy/admin.sock',
  bind: ':443',
  pem: '/etc/haproxy/gatehouse.pem',
  bundle: DOC_PATHS.bundle,
  crl: DOC_PATHS.crl,
  upstream: DOC_PATHS.upstream,
};

/** The haproxy.cfg of docs/recipes/haproxy.md. */
export function haproxyConfig(r: HaproxyRecipe): string {
  return `global
    log ${r.log}
    # Runtime API, for "show ssl crl-file" and the no-reload CRL update (see the recipe).
    stats socket ${r.socket} mode 600 level admin

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend gatehouse_mtls
    # crt: this proxy's chain and key in one file; clients must chain to the Gatehouse
    # CA bundle; crl-file holds the CRLs of both CAs (HAProxy needs one per CA).
    bind ${r.bind} ssl crt ${r.pem} verify required ca-file ${r.bundle} crl-file ${r.crl}
    # Drop every X-Client-* or X_Client_* header the client sent (names are lowercase here).
    http-request del-header ^x[-_]client[-_] -m reg
    http-request set-header X-Client-Subject %[ssl_c_s_dn(,0,rfc2253)]
    http-request set-header X-Client-Verify SUCCESS if { ssl_c_used } { ssl_c_verify 0 }
    default_backend app

backend app
    server app1 ${r.upstream}
`;
}

/** The agent's --on-renew hook for HAProxy: rebuild the crt file (0600), then reload. */
export function haproxyRenewHook(pem: string, reload: string): string {
  return `umask 077 && cat "$GATEHOUSE_DIR/cert.pem" "$GATEHOUSE_DIR/key.pem" > ${pem}.new && mv ${pem}.new ${pem} && ${reload}`;
}

/**
 * HAProxy's runtime API swapping the CRL file in memory, without a reload: `set` opens a
 * transaction with the new content (the payload ends at an empty line), `commit` applies it.
 */
export function haproxyRuntimeCrlUpdateShell(crlPath: string, socket: string): string {
  return `printf 'set ssl crl-file ${crlPath} <<\\n%s\\n\\n' "$(cat ${crlPath})" | socat stdio ${socket}
echo 'commit ssl crl-file ${crlPath}' | socat stdio ${socket}
`;
}

// ------------------------------------------------------------------ Caddy

export interface CaddyRecipe {
  admin: string;
  site: string;
  /** A `bind` address, or null for Caddy's default (all interfaces). */
  bind: string | null;
  cert: string;
  key: string;
  /** The root only: Caddy 2.6 reads the first certificate of this file (see the recipe). */
  root: string;
  upstream: string;
}

export const CADDY_DOC: CaddyRecipe = {
  admin: 'localhost:2019',
  site: `https://${DOC_PATHS.serverName}`,
  bind: null,
  cert: DOC_PATHS.cert,
  key: DOC_PATHS.key,
  root: DOC_PATHS.root,
  upstream: DOC_PATHS.upstream,
};

/** The Caddyfile of docs/recipes/caddy.md. */
export function caddyfile(r: CaddyRecipe): string {
  return `{
	admin ${r.admin}
	# Gatehouse issues this site's certificate: no ACME, no port-80 redirect listener.
	auto_https off
}

${r.site} {
${r.bind ? `\tbind ${r.bind}\n` : ''}	tls ${r.cert} ${r.key} {
		client_auth {
			mode require_and_verify
			trusted_ca_cert_file ${r.root}
		}
	}
	# Drop every X-Client-* or X_Client_* header the client sent, before proxying.
	request_header -X-Client-*
	request_header -X_Client_*
	reverse_proxy ${r.upstream} {
		header_up X-Client-Subject {http.request.tls.client.subject}
		# Only verified clients get this far (require_and_verify).
		header_up X-Client-Verify SUCCESS
	}
}
`;
}

/** The agent's --on-renew hook for Caddy: --force, because an unchanged Caddyfile is otherwise not reloaded. */
export function caddyReloadCommand(caddyfilePath: string, admin: string): string {
  return `caddy reload --force --config ${caddyfilePath} --adapter caddyfile --address ${admin}`;
}
