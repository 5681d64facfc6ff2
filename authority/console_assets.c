/*
 * console_assets.c - the console's front end: index.html, app.js and
 * app.css of authority/console/www, compiled in by xxd -i (see
 * authority/CMakeLists.txt) and served from memory.
 *
 * Compiled in rather than read from disk so that the daemon serves the
 * front end it was built and tested with, and no path from a request
 * ever reaches the file system.  The Content-Security-Policy console.c
 * sets on every response allows only these files' own origin.
 */
#include "console_impl.h"

/* Made by xxd -i from authority/console/www. */
extern unsigned char index_html[];
extern unsigned int  index_html_len;
extern unsigned char app_js[];
extern unsigned int  app_js_len;
extern unsigned char app_css[];
extern unsigned int  app_css_len;

static void
serve_static(struct resp *r, const void *data, size_t len, const char *type)
{
	r->status      = 200;
	r->type        = type;
	r->static_body = data;
	r->len         = len;
}

void
console_asset_index(console *c, const struct console_req *q,
    struct resp *r)
{
	(void)c;
	(void)q;
	serve_static(r, index_html, index_html_len,
	    "text/html; charset=utf-8");
}

void
console_asset_js(console *c, const struct console_req *q, struct resp *r)
{
	(void)c;
	(void)q;
	serve_static(r, app_js, app_js_len, "text/javascript; charset=utf-8");
}

void
console_asset_css(console *c, const struct console_req *q, struct resp *r)
{
	(void)c;
	(void)q;
	serve_static(r, app_css, app_css_len, "text/css; charset=utf-8");
}
