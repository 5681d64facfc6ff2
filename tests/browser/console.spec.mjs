// console.spec.mjs - the web console in a real browser (Debian's Chromium,
// driven by playwright-core from npm) against a running authority.
//
// tests/browser/run.sh sets up the authority and runs this with:
//   CS_CONSOLE_URL     https://127.0.0.1:PORT
//   CS_SPKI_HASH       base64 SHA-256 of the console certificate's SPKI:
//                      Chromium trusts exactly that key
//                      (--ignore-certificate-errors-spki-list), nothing else
//   CS_OFFICER_TOKEN   admin token with role officer
//   CS_VIEWER_TOKEN    admin token with role viewer
//   CS_STATION_BIN     countersign-station
//   CS_STATION_CONF    an enrolled station's configuration
//   CS_ORDER           an open order that station may sign for
//   CS_UID_LEN         that order's UID length in bytes (default 12)
//   CS_NODE_MODULES    directory holding node_modules/playwright-core
//   CS_ARTIFACTS       where screenshots and downloads go
//   CS_CHROMIUM        the browser (default /usr/bin/chromium)
//
// Scenario: officer signs in -> the dashboard shows the order's quota bar
// -> a station signs 3 records while the page is open -> the bar's issued
// count follows -> the officer adds 5 to the quota -> sign out, a viewer
// signs in -> no quota control, and the same change sent from the page is
// refused with 403 -> the audit log is exported as JSON lines.  Any CSP
// violation or script error on the page fails the test.
// Prints one "ok"/"not ok" line per step; exits 0 only if all passed.

import {createRequire} from "node:module";
import {execFile} from "node:child_process";
import {promisify} from "node:util";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const env = (name, dflt) => {
	const v = process.env[name] ?? dflt;
	if (v === undefined || v === "") {
		console.error(`console.spec: ${name} is not set (run through tests/browser/run.sh)`);
		process.exit(2);
	}
	return v;
};

const URL_ = env("CS_CONSOLE_URL");
const SPKI = env("CS_SPKI_HASH");
const OFFICER = env("CS_OFFICER_TOKEN");
const VIEWER = env("CS_VIEWER_TOKEN");
const STATION_BIN = env("CS_STATION_BIN");
const STATION_CONF = env("CS_STATION_CONF");
const ORDER = env("CS_ORDER");
const UID_LEN = Number(env("CS_UID_LEN", "12"));
const ARTIFACTS = env("CS_ARTIFACTS");
const CHROMIUM = env("CS_CHROMIUM", "/usr/bin/chromium");
const {chromium} = createRequire(path.join(env("CS_NODE_MODULES"), "x.js"))("playwright-core");
const run = promisify(execFile);

fs.mkdirSync(ARTIFACTS, {recursive: true});
let failures = 0;
let step = 0;

async function check(name, fn) {
	step++;
	const t0 = Date.now();
	try {
		await fn();
		console.log(`ok ${step} - ${name} (${Date.now() - t0} ms)`);
	} catch (e) {
		failures++;
		console.log(`not ok ${step} - ${name}: ${e.message.split("\n")[0]}`);
		console.log(e.stack.split("\n").slice(0, 8).map((l) => "#   " + l).join("\n"));
		throw e;
	}
}

function assert(cond, msg) {
	if (!cond) {
		throw new Error(msg);
	}
}

const shot = (page, name) => page.screenshot({path: path.join(ARTIFACTS, name + ".png"),
    fullPage: true});

const bar = (page) => page.locator(`.quota-bar[data-order="${ORDER}"]`).first();
const num = async (loc) => Number((await loc.textContent()).trim());

async function signIn(page, token, who) {
	await page.goto(URL_ + "/#/signin");
	await page.getByLabel("Admin token").fill(token);
	await page.getByRole("button", {name: "Sign in"}).click();
	await page.locator("#who-name", {hasText: who}).waitFor();
	await bar(page).waitFor();
}

async function main() {
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), "cs-chromium-"));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		acceptDownloads: true,
		viewport: {width: 1280, height: 900},
		args: ["--headless", "--no-sandbox", "--disable-gpu",
		    "--disable-background-networking", "--disable-component-update",
		    "--disable-sync", "--no-first-run",
		    `--ignore-certificate-errors-spki-list=${SPKI}`],
	});
	const problems = [];
	const page = context.pages()[0] ?? await context.newPage();
	page.setDefaultTimeout(15000);
	page.on("pageerror", (e) => problems.push("script error: " + e.message));
	page.on("console", (m) => {
		if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) {
			problems.push("CSP: " + m.text());
		}
	});
	console.log(`# browser: Chromium ${context.browser()?.version() ?? "?"}, console ${URL_}`);

	try {
		let issued0 = 0;
		let quota0 = 0;
		const uids = [];

		await check("the console loads over TLS with the test CA's key trusted, sign-in page shown",
		    async () => {
			const res = await page.goto(URL_ + "/");
			assert(res.ok(), `GET / answered ${res.status()}`);
			const csp = res.headers()["content-security-policy"] ?? "";
			assert(/default-src 'self'/.test(csp), `CSP header is "${csp}"`);
			await page.getByLabel("Admin token").waitFor();
			await shot(page, "01-signin");
		});

		await check("a wrong token is refused with the server's message", async () => {
			await page.getByLabel("Admin token").fill("not-a-token");
			await page.getByRole("button", {name: "Sign in"}).click();
			const err = page.locator("#error");
			await err.waitFor({state: "visible"});
			assert((await err.textContent()).trim().length > 0, "no error message shown");
		});

		await check("officer signs in; the dashboard shows the order's quota bar", async () => {
			await signIn(page, OFFICER, "officer1");
			await page.locator("#who-role", {hasText: "officer"}).waitFor();
			await page.locator("#rate-chart").waitFor();
			issued0 = await num(bar(page).locator(".n-issued"));
			quota0 = await num(bar(page).locator(".n-quota"));
			await shot(page, "02-dashboard-officer");
		});

		await check("3 records signed by a station show up in the open dashboard", async () => {
			const tag = crypto.randomBytes(4).toString("hex");
			for (let i = 1; i <= 3; i++) {
				const uid = tag + String(i).padStart(2 * UID_LEN - tag.length, "0");
				const out = path.join(ARTIFACTS, `rec-${i}.bin`);
				uids.push(uid);
				const r = await run(STATION_BIN, ["-c", STATION_CONF, "sign", "--order", ORDER,
				    "--uid", uid, "--out", out]);
				console.log("#   " + (r.stdout + r.stderr).trim());
			}
			await page.waitForFunction(([order, want]) => {
				const b = document.querySelector(`.quota-bar[data-order="${order}"] .n-issued`);
				return b !== null && Number(b.textContent) === want;
			}, [ORDER, issued0 + 3], {timeout: 15000});
			const rem = await num(bar(page).locator(".n-remaining"));
			assert(rem === quota0 - issued0 - 3, `remaining ${rem}, want ${quota0 - issued0 - 3}`);
			await page.locator('#dashboard tr[data-station] .badge', {hasText: "online"})
			    .first().waitFor();
			await shot(page, "03-dashboard-after-signing");
		});

		await check("officer adds 5 to the quota; the order view shows the new quota", async () => {
			await page.locator(`.card a`, {hasText: ORDER}).first().click();
			const q = page.locator('dd[data-field="quota"]');
			await q.waitFor();
			assert(await num(q) === quota0, `order view shows quota ${await q.textContent()}`);
			await page.getByLabel(/Change quota by/).fill("5");
			await page.getByRole("button", {name: "Adjust quota"}).click();
			await page.locator('dd[data-field="quota"]', {hasText: String(quota0 + 5)}).waitFor();
			await page.locator("#status", {hasText: `is now ${quota0 + 5}`}).waitFor();
			await shot(page, "04-order-quota-plus-5");
		});

		await check("devices: a signed UID is found with its order, station and verified record",
		    async () => {
			await page.getByRole("link", {name: "Devices"}).click();
			await page.getByLabel("Device UID (hex)").fill(uids[0].toUpperCase());
			await page.getByRole("button", {name: "Search"}).click();
			const card = page.locator(`#devices article[data-uid="${uids[0]}"]`);
			await card.waitFor();
			const text = await card.textContent();
			assert(text.includes(ORDER), "order not shown");
			assert(text.includes("signature ok"), "verify result is not ok");
			const hex = (await card.locator("pre.hex").textContent()).replace(/^[0-9a-f]{4}  /gm, "")
			    .replace(/\s/g, "");
			const rec = fs.readFileSync(path.join(ARTIFACTS, "rec-1.bin")).toString("hex");
			assert(hex === rec, "record hex differs from the station's record file");
			await shot(page, "05-device-record");
			await page.getByRole("link", {name: "Stations"}).click();
			await page.locator('tr[data-station="st1"]').waitFor();
			await shot(page, "06-stations");
			await page.goBack();
			await card.waitFor();
		});

		await check("sign out returns to the sign-in page; the session is gone", async () => {
			await page.getByRole("button", {name: "Sign out"}).click();
			await page.getByLabel("Admin token").waitFor();
			const st = await page.evaluate(async () => (await fetch("/api/me")).status);
			assert(st === 401, `/api/me after sign-out answered ${st}`);
		});

		await check("viewer signs in: no quota control; the change sent anyway is refused (403)",
		    async () => {
			await signIn(page, VIEWER, "viewer1");
			await page.locator("#who-role", {hasText: "viewer"}).waitFor();
			await shot(page, "07-dashboard-viewer");
			await page.goto(`${URL_}/#/orders/${encodeURIComponent(ORDER)}`);
			await page.locator('dd[data-field="quota"]').waitFor();
			await page.locator(".readonly-note").first().waitFor();
			assert(await page.locator("#quota-form").count() === 0, "viewer sees the quota form");
			assert(await page.locator("#close-order").count() === 0, "viewer sees Close order");
			const r = await page.evaluate(async (order) => {
				const me = await (await fetch("/api/me")).json();
				const res = await fetch(`/api/orders/${encodeURIComponent(order)}/quota`, {
					method: "POST",
					headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf},
					body: JSON.stringify({delta: 5}),
				});
				return {status: res.status, body: await res.text()};
			}, ORDER);
			console.log(`#   viewer POST quota -> ${r.status} ${r.body.trim()}`);
			assert(r.status === 403, `answered ${r.status}`);
			assert(typeof JSON.parse(r.body).error === "string", "no {\"error\"} in the answer");
			await page.reload();
			await page.locator('dd[data-field="quota"]', {hasText: String(quota0 + 5)}).waitFor();
			await shot(page, "08-order-viewer-readonly");
		});

		await check("audit page: chain badge, events; JSON-lines export downloads the log",
		    async () => {
			await page.getByRole("link", {name: "Audit"}).click();
			const b = page.locator("#chain-badge");
			await b.waitFor();
			const text = await b.textContent();
			assert(/chain verified up to #\d+/.test(text), `badge says "${text}"`);
			assert(await b.evaluate((n) => n.classList.contains("ok")), "badge is not green");
			await page.locator("table.audit tbody tr").first().waitFor();
			await shot(page, "09-audit");
			const [dl] = await Promise.all([page.waitForEvent("download"),
			    page.getByRole("link", {name: "Export JSON lines"}).click()]);
			const file = path.join(ARTIFACTS, "audit-export.jsonl");
			await dl.saveAs(file);
			const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
			assert(lines.length > 0, "empty export");
			const events = lines.map((l, i) => {
				try {
					return JSON.parse(l);
				} catch (e) {
					throw new Error(`line ${i + 1} is not JSON: ${l.slice(0, 80)}`);
				}
			});
			assert(events.some((e) => e.type === "order.quota" && e.actor === "console:officer1"),
			    "no order.quota event by console:officer1 in the export");
			assert(events.some((e) => e.type === "console.refused" && e.actor === "console:viewer1"),
			    "the viewer's refused change is not in the export");
			console.log(`#   exported ${events.length} events as JSON lines`);
			const [csv] = await Promise.all([page.waitForEvent("download"),
			    page.getByRole("link", {name: "Export CSV"}).click()]);
			const cfile = path.join(ARTIFACTS, "audit-export.csv");
			await csv.saveAs(cfile);
			const rows = fs.readFileSync(cfile, "utf8").split("\n").filter((l) => l !== "");
			assert(rows.length === events.length + 1, `CSV has ${rows.length} lines for ` +
			    `${events.length} events (want a header line more)`);
		});

		await check("audit filter: type order.quota shows exactly the officer's change", async () => {
			await page.getByLabel("Type").fill("order.quota");
			await page.getByRole("button", {name: "Filter"}).click();
			await page.waitForFunction(() => {
				const rows = [...document.querySelectorAll("table.audit tbody tr")];
				return rows.length > 0 && rows.every((r) => r.children[3].textContent === "order.quota");
			});
			const rows = page.locator("table.audit tbody tr");
			assert(await rows.count() === 1, `${await rows.count()} rows`);
			assert((await rows.first().textContent()).includes("console:officer1"), "wrong actor");
			await shot(page, "10-audit-filtered");
		});

		await check("no CSP violation and no script error on the page", async () => {
			assert(problems.length === 0, problems.join("; "));
		});
	} catch (e) {
		await shot(page, "99-failure").catch(() => {});
	} finally {
		await context.close();
		fs.rmSync(profile, {recursive: true, force: true});
	}
	console.log(failures === 0 ? `# all ${step} steps passed` : `# ${failures} step(s) failed`);
	return failures === 0 ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => {
	console.error("console.spec:", e);
	process.exit(1);
});
