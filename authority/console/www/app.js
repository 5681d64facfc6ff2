/*
 * Countersign console: a single page over the authority's JSON API
 * (/api/..., see docs/authority.md "Web console").  Plain modern JS, no
 * framework, no build step, nothing fetched from anywhere but the
 * authority itself.
 *
 * Rules this file keeps, and why:
 * - Every string that came from the server is put into the page with
 *   textContent or an attribute, never innerHTML: station names, CM names,
 *   order ids and audit fields are written by stations and officers.
 * - Nothing inline (styles, handlers, eval): the CSP is default-src 'self'.
 *   Charts are SVG built with createElementNS and sized by attributes.
 * - The server is the authority on who may do what.  Controls a viewer may
 *   not use are hidden, but every answer's {"error": ...} is shown as is,
 *   so a refused change (403) says why.
 * - A 401 anywhere means the session is gone: back to the sign-in page.
 */
"use strict";

(function () {
	const REFRESH_MS = 2000;        /* dashboard auto-refresh */
	const ONLINE_S = 600;           /* a station seen in the last 10 min */
	const AUDIT_PAGE = 100;         /* audit events per page (server max 500) */
	const SVG_NS = "http://www.w3.org/2000/svg";

	/* The signed-in user {name, role, csrf}, or null. */
	let me = null;
	/* Timer of the page being shown (the dashboard's refresh). */
	let timer = null;
	/* Bumped on every route change: late answers for an old page are dropped. */
	let generation = 0;
	/* Messages to show once the next page is drawn (a route change clears). */
	let flash = {error: "", status: ""};

	const $ = (id) => document.getElementById(id);
	const main = () => $("main");

	/* ------------------------------------------------------------ */
	/* DOM helpers                                                    */
	/* ------------------------------------------------------------ */

	/*
	 * el("tag", {attr: value, class: "x", text: "y", on: {click: fn}},
	 *    child...): children are nodes or strings (made text nodes).
	 */
	function el(tag, attrs, ...children) {
		const node = document.createElement(tag);
		setAttrs(node, attrs);
		append(node, children);
		return node;
	}

	function svg(tag, attrs, ...children) {
		const node = document.createElementNS(SVG_NS, tag);
		setAttrs(node, attrs);
		append(node, children);
		return node;
	}

	function setAttrs(node, attrs) {
		if (!attrs) {
			return;
		}
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false) {
				continue;
			}
			if (k === "text") {
				node.textContent = String(v);
			} else if (k === "on") {
				for (const [ev, fn] of Object.entries(v)) {
					node.addEventListener(ev, fn);
				}
			} else if (v === true) {
				node.setAttribute(k, "");
			} else {
				node.setAttribute(k, String(v));
			}
		}
	}

	function append(node, children) {
		for (const c of children.flat()) {
			if (c === undefined || c === null || c === false) {
				continue;
			}
			node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
		}
	}

	function clear(node) {
		while (node.firstChild) {
			node.removeChild(node.firstChild);
		}
		return node;
	}

	function showError(text) {
		const e = $("error");
		e.textContent = text;
		e.hidden = !text;
	}

	function showStatus(text) {
		$("status").textContent = text || "";
	}

	/* ------------------------------------------------------------ */
	/* Formatting                                                     */
	/* ------------------------------------------------------------ */

	function pad2(n) {
		return String(n).padStart(2, "0");
	}

	/* UTC, to the second: the audit log and the CLI speak UTC. */
	function fmtTime(unixS) {
		if (!unixS) {
			return "never";
		}
		const d = new Date(unixS * 1000);
		return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" +
		    pad2(d.getUTCDate()) + " " + pad2(d.getUTCHours()) + ":" +
		    pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds()) + "Z";
	}

	function fmtTimeMs(ms) {
		const base = fmtTime(Math.floor(ms / 1000));
		return base.slice(0, -1) + "." + String(ms % 1000).padStart(3, "0") + "Z";
	}

	/* expires_unix_s is the first second after the last valid UTC day. */
	function fmtExpires(unixS) {
		if (!unixS) {
			return "never";
		}
		return "valid through " + fmtTime(unixS - 1).slice(0, 10) + " (UTC)";
	}

	function ago(unixS) {
		if (!unixS) {
			return "never";
		}
		const s = Math.max(0, Math.floor(Date.now() / 1000) - unixS);
		if (s < 60) {
			return s + " s ago";
		}
		if (s < 3600) {
			return Math.floor(s / 60) + " min ago";
		}
		if (s < 86400) {
			return Math.floor(s / 3600) + " h ago";
		}
		return Math.floor(s / 86400) + " d ago";
	}

	function isOnline(lastSeen) {
		return lastSeen > 0 && Date.now() / 1000 - lastSeen < ONLINE_S;
	}

	function badge(kind, text) {
		return el("span", {class: "badge " + kind, text: text});
	}

	/* Record bytes as hex: 16 bytes a line after a hex offset, 4 bytes a group. */
	function hexBlock(hex) {
		const lines = [];
		for (let i = 0; i < hex.length; i += 32) {
			const line = hex.slice(i, i + 32).match(/.{1,8}/g) || [];
			lines.push((i / 2).toString(16).padStart(4, "0") + "  " + line.join(" "));
		}
		return lines.join("\n");
	}

	/* ------------------------------------------------------------ */
	/* API                                                            */
	/* ------------------------------------------------------------ */

	class ApiError extends Error {
		/* signedOut: the 401 has been handled by showing the sign-in page. */
		constructor(status, message, signedOut) {
			super(message);
			this.status = status;
			this.signedOut = signedOut === true;
		}
	}

	/*
	 * api(method, path[, body]) -> parsed JSON (or null for 204).
	 * Cookie session; changes carry X-CSRF-Token.  Throws ApiError with
	 * the server's own message; on 401 also returns to the sign-in page.
	 */
	async function api(method, path, body) {
		const headers = {"Accept": "application/json"};
		const init = {method: method, headers: headers, credentials: "same-origin",
		    cache: "no-store"};
		if (method !== "GET") {
			if (me && me.csrf) {
				headers["X-CSRF-Token"] = me.csrf;
			}
			if (body !== undefined) {
				headers["Content-Type"] = "application/json";
				init.body = JSON.stringify(body);
			}
		}
		let res;
		try {
			res = await fetch(path, init);
		} catch (e) {
			throw new ApiError(0, "The authority did not answer (" + e.message + ").");
		}
		let data = null;
		const text = await res.text();
		if (text) {
			try {
				data = JSON.parse(text);
			} catch (e) {
				data = null;
			}
		}
		if (res.status === 401 && path !== "/api/login") {
			signedOut(me !== null ? "Your session has ended: sign in again." : "");
			throw new ApiError(401, "not signed in", true);
		}
		if (!res.ok) {
			const msg = data && typeof data.error === "string" ? data.error :
			    "HTTP " + res.status + " " + res.statusText;
			throw new ApiError(res.status, msg);
		}
		return data;
	}

	/* Show what went wrong (except the 401 that already redirected). */
	function report(e) {
		if (e instanceof ApiError && e.signedOut) {
			return;
		}
		const prefix = e instanceof ApiError && e.status === 403 ? "Refused: " : "";
		showError(prefix + e.message);
	}

	function signedOut(message, status) {
		me = null;
		updateHeader();
		flash = {error: message || "", status: status || ""};
		go("#/signin");
	}

	/* Show page hash (drawing it again if it is the current one). */
	function go(hash) {
		if (location.hash !== hash) {
			location.hash = hash;
		} else {
			route();
		}
	}

	const isOfficer = () => me !== null && me.role === "officer";

	/* ------------------------------------------------------------ */
	/* Routing                                                        */
	/* ------------------------------------------------------------ */

	const pages = {
		signin: pageSignin,
		dashboard: pageDashboard,
		orders: pageOrders,
		stations: pageStations,
		devices: pageDevices,
		audit: pageAudit,
	};

	function parseHash() {
		const parts = location.hash.replace(/^#\/?/, "").split("/");
		return {page: parts[0] || "dashboard",
		    arg: parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : ""};
	}

	function route() {
		generation++;
		if (timer !== null) {
			clearTimeout(timer);
			timer = null;
		}
		let {page, arg} = parseHash();
		if (me === null && page !== "signin") {
			go("#/signin");
			return;
		}
		showError(flash.error);
		showStatus(flash.status);
		flash = {error: "", status: ""};
		if (!pages[page]) {
			page = "dashboard";
		}
		for (const a of document.querySelectorAll("#nav a")) {
			if (a.dataset.route === page) {
				a.setAttribute("aria-current", "page");
			} else {
				a.removeAttribute("aria-current");
			}
		}
		clear(main());
		pages[page](main(), arg, generation);
	}

	function updateHeader() {
		$("nav").hidden = me === null;
		$("who").hidden = me === null;
		$("who-name").textContent = me ? me.name : "";
		$("who-role").textContent = me ? me.role : "";
	}

	/* Put the page title in place and move keyboard focus to it. */
	function title(root, text) {
		const h = el("h1", {text: text, tabindex: "-1"});
		root.appendChild(h);
		document.title = text + " - Countersign console";
		h.focus();
		return h;
	}

	/* ------------------------------------------------------------ */
	/* Sign-in                                                        */
	/* ------------------------------------------------------------ */

	function pageSignin(root) {
		if (me !== null) {
			go("#/dashboard");
			return;
		}
		const input = el("input", {id: "token", name: "token", type: "password",
		    autocomplete: "off", required: true, spellcheck: "false"});
		const form = el("form", {class: "fields", id: "signin-form"},
		    el("label", {for: "token"}, "Admin token", input),
		    el("button", {type: "submit", class: "primary", text: "Sign in"}));
		form.addEventListener("submit", async (ev) => {
			ev.preventDefault();
			showError("");
			try {
				const r = await api("POST", "/api/login", {token: input.value.trim()});
				input.value = "";
				me = {name: r.name, role: r.role, csrf: r.csrf};
				updateHeader();
				go("#/dashboard");
			} catch (e) {
				report(e);
				input.select();
			}
		});
		const box = el("section", {class: "signin"});
		root.appendChild(box);
		title(box, "Sign in");
		box.appendChild(el("p", {text: "Paste an admin token (countersign-admin token create)."}));
		box.appendChild(form);
		input.focus();
	}

	async function signOut() {
		try {
			await api("POST", "/api/logout");
		} catch (e) {
			/* The session may be gone already; signing out locally is what counts. */
		}
		signedOut("", "Signed out.");
	}

	/* ------------------------------------------------------------ */
	/* Charts                                                         */
	/* ------------------------------------------------------------ */

	/*
	 * The quota bar of one order: confirmed | failed | issued but not yet
	 * reported | remaining, as parts of the quota.  A legend with the
	 * numbers goes with it (the numbers are the accessible text).
	 */
	function quotaBar(o) {
		const quota = Math.max(o.quota, o.issued, 1);
		const confirmed = o.confirmed;
		const failed = o.failed;
		const pending = Math.max(0, o.issued - confirmed - failed);
		const W = 1000;
		const parts = [["confirmed", confirmed], ["failed", failed],
		    ["issued", pending], ["remaining", Math.max(0, o.remaining)]];
		const label = o.order_id + ": " + o.issued + " of " + o.quota + " issued, " +
		    confirmed + " confirmed, " + failed + " failed, " + o.remaining + " remaining";
		const bar = svg("svg", {class: "quota", viewBox: "0 0 " + W + " 20",
		    preserveAspectRatio: "none", role: "img", "aria-label": label});
		bar.appendChild(svg("title", {text: label}));
		let x = 0;
		for (const [cls, n] of parts) {
			const w = (n / quota) * W;
			if (w > 0) {
				bar.appendChild(svg("rect", {class: cls, x: x, y: 0, width: w, height: 20}));
				x += w;
			}
		}
		const item = (cls, name, n) => el("span", {"data-field": cls},
		    el("span", {class: "sw " + cls, "aria-hidden": "true"}),
		    name + " ", el("b", {class: "n-" + cls, text: n}));
		const legend = el("div", {class: "legend"},
		    item("issued", "issued", o.issued),
		    el("span", {}, "quota ", el("b", {class: "n-quota", text: o.quota})),
		    item("confirmed", "confirmed", confirmed),
		    item("failed", "failed", failed),
		    item("remaining", "remaining", o.remaining));
		return el("div", {class: "quota-bar", "data-order": o.order_id}, bar, legend);
	}

	/* Records signed per minute over the last hour, as SVG bars. */
	function rateChart(rate) {
		const W = 600, H = 180, L = 40, B = 22, T = 10, R = 8;
		const n = rate.length;
		const max = Math.max(1, ...rate.map((r) => r.n));
		const total = rate.reduce((s, r) => s + r.n, 0);
		const label = "Records signed per minute, last hour: " + total +
		    " in total, at most " + max + " in one minute";
		const chart = svg("svg", {class: "rate", viewBox: "0 0 " + W + " " + H,
		    role: "img", "aria-label": label, id: "rate-chart"});
		chart.appendChild(svg("title", {text: label}));
		const plotW = W - L - R, plotH = H - T - B;
		for (const f of [0, 0.5, 1]) {
			const y = T + plotH - f * plotH;
			chart.appendChild(svg("line", {class: "grid", x1: L, x2: W - R, y1: y, y2: y}));
			chart.appendChild(svg("text", {x: L - 4, y: y + 4, "text-anchor": "end",
			    text: Number.isInteger(f * max) ? String(f * max) : (f * max).toFixed(1)}));
		}
		const slot = plotW / Math.max(n, 1);
		rate.forEach((r, i) => {
			const h = (r.n / max) * plotH;
			const rect = svg("rect", {class: "bar", x: L + i * slot + 0.5,
			    y: T + plotH - h, width: Math.max(slot - 1, 1), height: h});
			rect.appendChild(svg("title", {text: fmtTime(r.t).slice(11, 16) + "Z: " + r.n}));
			chart.appendChild(rect);
		});
		chart.appendChild(svg("line", {class: "axis", x1: L, x2: W - R,
		    y1: T + plotH, y2: T + plotH}));
		if (n > 0) {
			chart.appendChild(svg("text", {x: L, y: H - 6,
			    text: fmtTime(rate[0].t).slice(11, 16) + "Z"}));
			chart.appendChild(svg("text", {x: W - R, y: H - 6, "text-anchor": "end",
			    text: fmtTime(rate[n - 1].t).slice(11, 16) + "Z"}));
		}
		return chart;
	}

	/* ------------------------------------------------------------ */
	/* Dashboard                                                      */
	/* ------------------------------------------------------------ */

	function pageDashboard(root, _arg, gen) {
		title(root, "Dashboard");
		/* Not a live region: announcing every refresh would drown a
		 * screen reader; the numbers are read when visited. */
		const updated = el("p", {class: "muted", id: "updated"});
		const body = el("div", {id: "dashboard"});
		append(root, [updated, body]);
		/* One request at a time: the next starts REFRESH_MS after the
		 * last answer, so a slow authority is never piled up on. */
		const refresh = async () => {
			try {
				const d = await api("GET", "/api/dashboard");
				if (gen !== generation) {
					return;
				}
				showError("");
				renderDashboard(body, d);
				updated.textContent = "Updated " +
				    fmtTime(Math.floor(Date.now() / 1000)).slice(11) +
				    ", every " + REFRESH_MS / 1000 + " s.";
			} catch (e) {
				if (gen !== generation) {
					return;
				}
				report(e);
				if (e instanceof ApiError && e.signedOut) {
					return;
				}
			}
			timer = setTimeout(refresh, REFRESH_MS);
		};
		refresh();
	}

	function renderDashboard(body, d) {
		const orders = el("section", {"aria-labelledby": "h-orders"},
		    el("h2", {id: "h-orders", text: "Orders"}));
		const open = (d.orders || []).filter((o) => !o.closed);
		if (open.length === 0) {
			orders.appendChild(el("p", {class: "muted", text: "No open orders."}));
		}
		const cards = el("div", {class: "cards"});
		for (const o of open) {
			cards.appendChild(el("article", {class: "card"},
			    el("h3", {}, el("a", {href: "#/orders/" + encodeURIComponent(o.order_id),
			        text: o.order_id}), " ",
			        o.active ? badge("ok", "active") : badge("off", "inactive")),
			    quotaBar(o)));
		}
		orders.appendChild(cards);

		const rate = el("section", {"aria-labelledby": "h-rate"},
		    el("h2", {id: "h-rate", text: "Signing rate, last hour (records per minute)"}),
		    rateChart(d.rate || []));

		const st = d.stations || [];
		const online = st.filter((s) => isOnline(s.last_seen_unix_s)).length;
		const stations = el("section", {"aria-labelledby": "h-stations"},
		    el("h2", {id: "h-stations", text: "Stations (" + online + " of " + st.length + " online)"}),
		    stationTable(st, false));

		const alerts = d.alerts || {clones: 0, refusals: {}};
		const reasons = Object.entries(alerts.refusals || {}).sort((a, b) => b[1] - a[1]);
		const alertBox = el("section", {"aria-labelledby": "h-alerts"},
		    el("h2", {id: "h-alerts", text: "Alerts"}),
		    el("p", {}, "Clone signals: ",
		        alerts.clones > 0 ? badge("bad", String(alerts.clones)) : badge("ok", "0")),
		    reasons.length === 0 ? el("p", {class: "muted", text: "No refusals."}) :
		    el("table", {id: "refusals"},
		        el("caption", {text: "Refused sign requests by reason"}),
		        el("thead", {}, el("tr", {},
		            el("th", {scope: "col", text: "Reason"}),
		            el("th", {scope: "col", class: "num", text: "Count"}))),
		        el("tbody", {}, reasons.map(([r, n]) => el("tr", {},
		            el("td", {class: "mono", text: r}),
		            el("td", {class: "num", text: n}))))));

		/* Replace in one go so the page never shows half an update; keep
		 * keyboard focus on the same link across the refresh. */
		const focused = body.contains(document.activeElement) ?
		    document.activeElement.getAttribute("href") : null;
		clear(body);
		append(body, [orders, rate, stations, alertBox]);
		if (focused !== null) {
			for (const a of body.querySelectorAll("a[href]")) {
				if (a.getAttribute("href") === focused) {
					a.focus();
					break;
				}
			}
		}
	}

	/* ------------------------------------------------------------ */
	/* Stations                                                       */
	/* ------------------------------------------------------------ */

	function stationTable(list, withActions, onChange) {
		if (list.length === 0) {
			return el("p", {class: "muted", text: "No stations enrolled."});
		}
		const cols = ["Station", "CM", "State", "Last seen", "Online"];
		if (withActions) {
			cols.splice(4, 0, "Enrolled");
		}
		const rows = list.map((s) => {
			const tr = el("tr", {"data-station": s.name},
			    el("th", {scope: "row", text: s.name}),
			    el("td", {text: s.cm}),
			    el("td", {}, s.enabled ? badge("ok", "enabled") : badge("bad", "disabled")),
			    el("td", {title: fmtTime(s.last_seen_unix_s), text: ago(s.last_seen_unix_s)}));
			if (withActions) {
				tr.appendChild(el("td", {text: fmtTime(s.enrolled_unix_s)}));
			}
			tr.appendChild(el("td", {}, isOnline(s.last_seen_unix_s) ?
			    badge("ok", "online") : badge("off", "offline")));
			if (withActions && isOfficer()) {
				const verb = s.enabled ? "disable" : "enable";
				tr.appendChild(el("td", {}, el("button", {type: "button",
				    class: s.enabled ? "danger" : "", text: s.enabled ? "Disable" : "Enable",
				    "aria-label": (s.enabled ? "Disable " : "Enable ") + s.name,
				    on: {click: async (ev) => {
					    if (verb === "disable" && !confirm("Disable station " + s.name +
						"? It will be refused at once.")) {
						    return;
					    }
					    ev.target.disabled = true;
					    try {
						    await api("POST", "/api/stations/" +
							encodeURIComponent(s.name) + "/" + verb);
						    showStatus("Station " + s.name + " " + verb + "d.");
						    onChange();
					    } catch (e) {
						    report(e);
						    ev.target.disabled = false;
					    }
				    }}})));
			}
			return tr;
		});
		const head = el("tr", {}, cols.map((c) => el("th", {scope: "col", text: c})));
		if (withActions && isOfficer()) {
			head.appendChild(el("th", {scope: "col", text: "Action"}));
		}
		return el("table", {class: "stations"}, el("thead", {}, head), el("tbody", {}, rows));
	}

	function pageStations(root, _arg, gen) {
		title(root, "Stations");
		if (!isOfficer()) {
			root.appendChild(el("p", {class: "readonly-note",
			    text: "Read-only: viewers cannot enable or disable stations."}));
		}
		const body = el("div");
		root.appendChild(body);
		const load = async () => {
			try {
				const r = await api("GET", "/api/stations");
				if (gen === generation) {
					clear(body).appendChild(stationTable(r.stations || [], true, load));
				}
			} catch (e) {
				report(e);
			}
		};
		load();
	}

	/* ------------------------------------------------------------ */
	/* Orders                                                         */
	/* ------------------------------------------------------------ */

	function field(id, labelText, attrs) {
		const input = el("input", Object.assign({id: id, name: id}, attrs));
		return [el("label", {for: id}, labelText, input), input];
	}

	function pageOrders(root, arg, gen) {
		if (arg) {
			pageOrder(root, arg, gen);
			return;
		}
		title(root, "Orders");
		if (isOfficer()) {
			root.appendChild(createOrderForm());
		} else {
			root.appendChild(el("p", {class: "readonly-note",
			    text: "Read-only: viewers cannot create, change or close orders."}));
		}
		const body = el("div");
		root.appendChild(body);
		(async () => {
			try {
				const r = await api("GET", "/api/orders");
				if (gen !== generation) {
					return;
				}
				const list = r.orders || [];
				if (list.length === 0) {
					body.appendChild(el("p", {class: "muted", text: "No orders yet."}));
					return;
				}
				body.appendChild(el("table", {id: "orders"},
				    el("thead", {}, el("tr", {}, ["Order", "Product", "Key", "Quota",
				        "Issued", "Confirmed", "Failed", "Remaining", "State", "Expires"]
				        .map((c, i) => el("th", {scope: "col", class: i >= 3 && i <= 7 ? "num" : "",
				            text: c})))),
				    el("tbody", {}, list.map((o) => el("tr", {"data-order": o.order_id},
				        el("th", {scope: "row"}, el("a", {href: "#/orders/" +
				            encodeURIComponent(o.order_id), text: o.order_id})),
				        el("td", {class: "num", text: o.product_id}),
				        el("td", {class: "mono", text: o.key_label}),
				        el("td", {class: "num", text: o.quota}),
				        el("td", {class: "num", text: o.issued}),
				        el("td", {class: "num", text: o.confirmed}),
				        el("td", {class: "num", text: o.failed}),
				        el("td", {class: "num", text: o.remaining}),
				        el("td", {}, orderState(o)),
				        el("td", {text: fmtExpires(o.expires_unix_s)}))))));
			} catch (e) {
				report(e);
			}
		})();
	}

	function orderState(o) {
		if (o.closed) {
			return badge("off", "closed");
		}
		return o.active ? badge("ok", "active") : badge("warn", "inactive");
	}

	function createOrderForm() {
		const [lId, id] = field("new-order-id", "Order id", {required: true, maxlength: 64});
		const [lProd, prod] = field("new-product", "Product id", {type: "number", min: 0,
		    required: true});
		const [lKey, key] = field("new-key", "Key label", {required: true, maxlength: 64});
		const [lQuota, quota] = field("new-quota", "Quota", {type: "number", min: 1,
		    required: true});
		const [lUid, uid] = field("new-uid-len", "UID length (bytes)", {type: "number",
		    min: 1, max: 64, value: 12, required: true});
		const [lCms, cms] = field("new-cms", "CMs (comma-separated, empty = any)", {});
		const [lExp, exp] = field("new-expires", "Last valid day (UTC, optional)",
		    {type: "date"});
		const form = el("form", {class: "fields", id: "create-order",
		    "aria-label": "Create an order"},
		    lId, lProd, lKey, lQuota, lUid, lCms, lExp,
		    el("button", {type: "submit", class: "primary", text: "Create order"}));
		form.addEventListener("submit", async (ev) => {
			ev.preventDefault();
			showError("");
			let expires = 0;
			if (exp.value) {
				const [y, m, d] = exp.value.split("-").map(Number);
				expires = Date.UTC(y, m - 1, d + 1) / 1000;
			}
			const body = {
				order_id: id.value.trim(),
				product_id: Number(prod.value),
				key_label: key.value.trim(),
				quota: Number(quota.value),
				uid_len: Number(uid.value),
				cms: cms.value.split(",").map((s) => s.trim()).filter((s) => s),
				expires_unix_s: expires,
			};
			try {
				const o = await api("POST", "/api/orders", body);
				flash.status = "Order " + o.order_id + " created.";
				go("#/orders/" + encodeURIComponent(o.order_id));
			} catch (e) {
				report(e);
			}
		});
		return form;
	}

	function pageOrder(root, orderId, gen) {
		title(root, "Order " + orderId);
		root.appendChild(el("p", {}, el("a", {href: "#/orders", text: "All orders"})));
		const body = el("div", {id: "order"});
		root.appendChild(body);
		const path = "/api/orders/" + encodeURIComponent(orderId);
		const render = (o) => {
			clear(body);
			const props = [
				["Order", o.order_id], ["Product", o.product_id],
				["Key label", o.key_label], ["Quota", o.quota],
				["Issued", o.issued], ["Confirmed", o.confirmed],
				["Failed", o.failed], ["Remaining", o.remaining],
				["UID length", o.uid_len + " bytes"],
				["CMs", (o.cms || []).length ? o.cms.join(", ") : "any"],
				["Expires", fmtExpires(o.expires_unix_s)],
				["Created", fmtTime(o.created_unix_s)],
				["Firmware SHA-256", o.firmware_sha256 || "none"],
				["Firmware image", !o.firmware_held ? "not held (the CM brings it)"
				    : o.firmware_withdrawn ? "withdrawn (version " + o.firmware_version + ")"
				    : "held by the authority, version " + o.firmware_version],
				["Target", o.target || "not bound"],
				["Lock", (o.require_lock ? "required" : "not required") +
				    ", " + o.unlocked + " programmed unlocked"],
			];
			const dl = el("dl", {class: "props"});
			for (const [k, v] of props) {
				const key = k.toLowerCase().replace(/[^a-z0-9]+/g, "-");
				dl.appendChild(el("dt", {text: k}));
				dl.appendChild(el("dd", {"data-field": key,
				    class: k === "Firmware SHA-256" ? "mono" : "", text: v}));
			}
			dl.appendChild(el("dt", {text: "State"}));
			dl.appendChild(el("dd", {}, orderState(o)));
			body.appendChild(quotaBar(o));
			body.appendChild(dl);
			if (!isOfficer()) {
				body.appendChild(el("p", {class: "readonly-note",
				    text: "Read-only: viewers cannot change quotas or close orders."}));
				return;
			}
			if (o.closed) {
				return;
			}
			body.appendChild(quotaForm(o, path, render));
			body.appendChild(el("div", {class: "toolbar"}, el("button", {type: "button",
			    class: "danger", id: "close-order", text: "Close order",
			    on: {click: async () => {
				    if (!confirm("Close order " + o.order_id +
					"? Stations can no longer sign for it.")) {
					    return;
				    }
				    try {
					    render(await api("POST", path + "/close"));
					    showStatus("Order " + o.order_id + " closed.");
				    } catch (e) {
					    report(e);
				    }
			    }}})));
		};
		(async () => {
			try {
				const o = await api("GET", path);
				if (gen === generation) {
					render(o);
				}
			} catch (e) {
				report(e);
			}
		})();
	}

	function quotaForm(o, path, render) {
		const [lDelta, delta] = field("quota-delta", "Change quota by (+N or -N)",
		    {type: "number", step: 1, required: true, placeholder: "+100"});
		const form = el("form", {class: "fields", id: "quota-form",
		    "aria-label": "Adjust quota"}, lDelta,
		    el("button", {type: "submit", class: "primary", text: "Adjust quota"}));
		form.addEventListener("submit", async (ev) => {
			ev.preventDefault();
			showError("");
			const n = Number(delta.value);
			if (!Number.isInteger(n) || n === 0) {
				showError("Enter a whole number other than 0, e.g. 100 or -20.");
				return;
			}
			try {
				const r = await api("POST", path + "/quota", {delta: n});
				render(r);
				showStatus("Quota of " + r.order_id + " is now " + r.quota + ".");
			} catch (e) {
				report(e);
			}
		});
		return form;
	}

	/* ------------------------------------------------------------ */
	/* Devices                                                        */
	/* ------------------------------------------------------------ */

	function pageDevices(root, arg, gen) {
		title(root, "Devices");
		const [lUid, uid] = field("uid", "Device UID (hex)", {required: true,
		    pattern: "([0-9A-Fa-f]{2})+", spellcheck: "false", class: "mono",
		    size: 40, value: arg || ""});
		const form = el("form", {class: "fields", role: "search", id: "device-search"},
		    lUid, el("button", {type: "submit", class: "primary", text: "Search"}));
		const body = el("div", {id: "devices", "aria-live": "polite"});
		root.appendChild(form);
		root.appendChild(body);
		const search = async (hex) => {
			clear(body);
			try {
				const r = await api("GET", "/api/devices?uid=" + encodeURIComponent(hex));
				if (gen !== generation) {
					return;
				}
				const list = r.devices || [];
				if (list.length === 0) {
					body.appendChild(el("p", {text: "No record for UID " + hex + "."}));
				}
				for (const d of list) {
					body.appendChild(deviceCard(d));
				}
			} catch (e) {
				report(e);
			}
		};
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			showError("");
			const hex = uid.value.replace(/[\s:]/g, "").toLowerCase();
			if (!/^([0-9a-f]{2})+$/.test(hex)) {
				showError("A UID is an even number of hex digits, e.g. 0102030405060708090a0b0c.");
				return;
			}
			/* In the address, so that Back and a bookmark show the result. */
			go("#/devices/" + hex);
		});
		if (/^([0-9a-f]{2})+$/.test(arg)) {
			search(arg);
		}
	}

	function deviceCard(d) {
		const ok = d.verify === "ok";
		return el("article", {class: "card", "data-uid": d.uid},
		    el("h3", {class: "mono", text: d.uid}),
		    el("dl", {class: "props"},
		        el("dt", {text: "Order"}), el("dd", {}, el("a", {href: "#/orders/" +
		            encodeURIComponent(d.order_id), text: d.order_id})),
		        el("dt", {text: "Product"}), el("dd", {text: d.product_id}),
		        el("dt", {text: "Station"}), el("dd", {text: d.station}),
		        el("dt", {text: "Serial"}), el("dd", {text: d.serial}),
		        el("dt", {text: "Issued"}), el("dd", {text: fmtTime(d.issued_unix_s)}),
		        el("dt", {text: "State"}), el("dd", {text: d.state}),
		        el("dt", {text: "Lock"}), el("dd", {text: d.lock || "not reported"}),
		        el("dt", {text: "Firmware"}), el("dd", {text: d.firmware_checked
		            ? "checked against the order's digest" : "not checked"}),
		        el("dt", {text: "Verify"}), el("dd", {},
		            ok ? badge("ok", "signature ok") : badge("bad", "failed: " + d.verify))),
		    el("h4", {text: "Record (" + (d.record || "").length / 2 + " bytes)"}),
		    el("pre", {class: "hex", "aria-label": "record bytes in hex",
		        text: hexBlock(d.record || "")}));
	}

	/* ------------------------------------------------------------ */
	/* Audit                                                          */
	/* ------------------------------------------------------------ */

	function pageAudit(root, _arg, gen) {
		title(root, "Audit log");
		const [lType, type] = field("f-type", "Type", {placeholder: "sign.refused",
		    list: "audit-types"});
		const types = el("datalist", {id: "audit-types"}, ["key.added", "order.created",
		    "order.quota", "order.closed", "station.enrolled", "station.enabled",
		    "station.disabled", "station.authenticated", "auth.refused", "sign.issued",
		    "sign.reissued", "sign.refused", "device.reported", "console.signin",
		    "console.signin.failed", "console.refused"].map((t) => el("option", {value: t})));
		const [lActor, actor] = field("f-actor", "Actor", {placeholder: "console:officer1"});
		const [lOrder, order] = field("f-order", "Order", {});
		const [lSince, since] = field("f-since", "From (local time)",
		    {type: "datetime-local", step: 1});
		const [lUntil, until] = field("f-until", "Until (local time)",
		    {type: "datetime-local", step: 1});
		const form = el("form", {class: "fields", role: "search", id: "audit-filter"},
		    lType, types, lActor, lOrder, lSince, lUntil,
		    el("button", {type: "submit", class: "primary", text: "Filter"}));
		const chain = el("p", {id: "chain"});
		const exports = el("div", {class: "toolbar"},
		    el("a", {class: "button", id: "export-jsonl", download: "countersign-audit.jsonl",
		        href: "/api/audit/export?format=jsonl", text: "Export JSON lines"}),
		    el("a", {class: "button", id: "export-csv", download: "countersign-audit.csv",
		        href: "/api/audit/export?format=csv", text: "Export CSV"}));
		const body = el("div", {id: "audit"});
		const prev = el("button", {type: "button", text: "Previous page", disabled: true});
		const next = el("button", {type: "button", text: "Next page", disabled: true});
		const where = el("span", {class: "muted"});
		const pager = el("div", {class: "pager"}, prev, next, where);
		append(root, [exports, form, chain, body, pager]);

		/* after_seq of each page seen, to go back. */
		let stack = [0];
		let nextAfter = 0;

		const load = async () => {
			const q = new URLSearchParams();
			if (type.value.trim()) q.set("type", type.value.trim());
			if (actor.value.trim()) q.set("actor", actor.value.trim());
			if (order.value.trim()) q.set("order", order.value.trim());
			if (since.value) q.set("since_ms", String(new Date(since.value).getTime()));
			if (until.value) q.set("until_ms", String(new Date(until.value).getTime()));
			q.set("after_seq", String(stack[stack.length - 1]));
			q.set("limit", String(AUDIT_PAGE));
			let r;
			try {
				r = await api("GET", "/api/audit?" + q.toString());
			} catch (e) {
				report(e);
				return;
			}
			if (gen !== generation) {
				return;
			}
			clear(chain).appendChild(r.intact ?
			    badge("ok", "chain verified up to #" + r.verified_up_to) :
			    badge("bad", "chain NOT intact: verified only up to #" + r.verified_up_to));
			chain.firstChild.id = "chain-badge";
			const events = r.events || [];
			nextAfter = r.next_after_seq;
			clear(body);
			if (events.length === 0) {
				body.appendChild(el("p", {class: "muted", text: "No events."}));
			} else {
				body.appendChild(auditTable(events));
			}
			prev.disabled = stack.length <= 1;
			next.disabled = events.length < AUDIT_PAGE || !nextAfter;
			where.textContent = events.length ? "events #" + events[0].seq + " to #" +
			    events[events.length - 1].seq : "";
		};
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			showError("");
			stack = [0];
			load();
		});
		next.addEventListener("click", () => {
			stack.push(nextAfter);
			load();
		});
		prev.addEventListener("click", () => {
			if (stack.length > 1) {
				stack.pop();
			}
			load();
		});
		load();
	}

	function auditTable(events) {
		return el("table", {class: "audit"},
		    el("thead", {}, el("tr", {}, ["#", "Time (UTC)", "Actor", "Type", "Fields", "Hash"]
		        .map((c) => el("th", {scope: "col", text: c})))),
		    el("tbody", {}, events.map((e) => el("tr", {"data-seq": e.seq},
		        el("td", {class: "num", text: e.seq}),
		        el("td", {class: "mono nowrap", text: fmtTimeMs(e.time_unix_ms)}),
		        el("td", {text: e.actor}),
		        el("td", {class: "mono", text: e.type}),
		        el("td", {class: "mono", text: Object.entries(e.fields || {})
		            .map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)))
		            .join(" ")}),
		        el("td", {class: "mono", title: e.hash, text: (e.hash || "").slice(0, 12) + "…"})))));
	}

	/* ------------------------------------------------------------ */
	/* Start                                                          */
	/* ------------------------------------------------------------ */

	async function start() {
		$("signout").addEventListener("click", signOut);
		$("skip-link").addEventListener("click", (ev) => {
			ev.preventDefault();
			main().focus();
		});
		window.addEventListener("hashchange", route);
		/* Already signed in (the session cookie survives a reload)? */
		try {
			const r = await api("GET", "/api/me");
			me = {name: r.name, role: r.role, csrf: r.csrf};
		} catch (e) {
			if (e instanceof ApiError && e.signedOut) {
				return; /* api() has shown the sign-in page */
			}
			flash.error = e.message;
			go("#/signin");
			return;
		}
		updateHeader();
		go(!location.hash || location.hash === "#/signin" ? "#/dashboard" : location.hash);
	}

	document.addEventListener("DOMContentLoaded", start);
}());
