// syncer web viewer. Plain JavaScript, no framework, no inline handlers
// (the Content-Security-Policy allows scripts from this file only). Text
// from the archive is only ever put into the page as text nodes, never as
// HTML, so a log line or file name containing markup shows as text.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };

  // Path bytes to a URL path: every byte but unreserved ones
  // percent-encoded, so names that are not UTF-8 go back to the server
  // unchanged.
  function encBytes(bytes) {
    let s = "";
    for (const b of bytes) {
      const c = String.fromCharCode(b);
      s += /[A-Za-z0-9\-._~!$&'()*+,;=:@]/.test(c) && b < 128 ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }
    return s;
  }
  function b64bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  // encPath makes the URL path "agent/elem/elem" of an API entry.
  function encPath(agent, path, pathB64) {
    const parts = [encBytes(new TextEncoder().encode(agent))];
    if (path || pathB64) {
      const bytes = pathB64 ? b64bytes(pathB64) : new TextEncoder().encode(path);
      let cur = [];
      for (const b of bytes) {
        if (b === 47) { parts.push(encBytes(cur)); cur = []; } else cur.push(b);
      }
      parts.push(encBytes(cur));
    }
    return parts.join("/");
  }
  function human(n) {
    if (n < 1024) return n + " B";
    const u = "KMGTPE";
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + " " + u[i] + "iB";
  }
  function when(s) { return fmtTime(s, false, true); }
  async function getJSON(url, opts) {
    const r = await fetch(url, Object.assign({ credentials: "same-origin" }, opts || {}));
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }
  // Names that deceive (see httpview/names.go, the same rules): every
  // invisible or direction-changing character shows as a marked escape
  // (\u202e), and a name the server flags as mixing scripts in one word
  // gets a ⚠. The text of the link stays the name; its href is exact.
  const hiddenRe = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Default_Ignorable_Code_Point}\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/u;
  function runeKind(cp) {
    if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c) return "a direction control: it reorders the text that follows";
    if ((cp >= 0x200b && cp <= 0x200d) || cp === 0x2060 || cp === 0xfeff) return "a zero-width character";
    if (/\p{Cc}/u.test(String.fromCodePoint(cp))) return "a control character";
    if (/\p{Zs}/u.test(String.fromCodePoint(cp))) return "a space that is not U+0020";
    if (/\p{Co}/u.test(String.fromCodePoint(cp))) return "a private-use character";
    return "an invisible character";
  }
  function nameNode(text, flags) {
    const out = el("span", { class: "nm" });
    let plain = "";
    for (const ch of text) {
      if (ch === " " || !hiddenRe.test(ch)) { plain += ch; continue; }
      if (plain) { out.append(plain); plain = ""; }
      const cp = ch.codePointAt(0);
      const hex = cp.toString(16);
      const esc = cp > 0xffff ? "\\U" + hex.padStart(8, "0") : "\\u" + hex.padStart(4, "0");
      out.append(el("span", { class: "esc", title: "U+" + hex.toUpperCase().padStart(4, "0") + ", " + runeKind(cp) + "; shown escaped", text: esc }));
    }
    if (plain) out.append(plain);
    if (flags && flags.includes("mixed_script")) {
      out.append(el("span", { class: "lookalike", role: "img", "aria-label": "warning: mixes scripts in one word", title: "mixes scripts in one word: it may imitate another name", text: "⚠" }));
    }
    return out;
  }
  function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  // textWithMarks appends text to parent, matches of re wrapped in <mark>.
  function textWithMarks(parent, text, re) {
    if (!re) { parent.textContent = text; return 0; }
    re.lastIndex = 0;
    let last = 0, n = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      parent.append(text.slice(last, m.index), el("mark", { text: m[0] }));
      last = m.index + m[0].length;
      n++;
      if (n > 1000) break;
    }
    parent.append(text.slice(last));
    return n;
  }
  // jsRegExp turns the user's query into a JavaScript RegExp for
  // highlighting (the server's Go regexp decides what matches; a pattern
  // JavaScript cannot compile is just not highlighted).
  function jsRegExp(q, isRe, matchCase) {
    if (!q) return null;
    try {
      return new RegExp(isRe ? q.replace(/^\(\?i\)/, "") : escapeRe(q), "g" + (matchCase && !/^\(\?i\)/.test(q) ? "" : "i"));
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- one clock
  // Every time on every page is shown in one zone: UTC unless the viewer
  // switched to the browser's zone (the header's button; remembered),
  // always 24-hour, and always with the zone named.
  const TZKEY = "syncer.tz";
  const tzLocal = () => localStorage.getItem(TZKEY) === "local";
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function offsetName(d) {
    const m = -d.getTimezoneOffset();
    return "UTC" + (m < 0 ? "−" : "+") + pad(Math.floor(Math.abs(m) / 60)) + ":" + pad(Math.abs(m) % 60);
  }
  function zoneLabel() {
    if (!tzLocal()) return "UTC";
    let name = "";
    try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
    const off = offsetName(new Date());
    return name && name !== "UTC" ? name + " (" + off + ")" : off;
  }
  // fmtTime shows a Date (or an RFC 3339 string) as "2026-12-03 10:02:00"
  // in the chosen zone; ms adds milliseconds, zone the zone's name.
  function fmtTime(d, ms, zone) {
    if (typeof d === "string") {
      if (!d || d.startsWith("0001-")) return "—";
      d = new Date(d);
    }
    if (isNaN(d)) return "—";
    const L = tzLocal();
    let s = (L ? d.getFullYear() : d.getUTCFullYear()) + "-" + pad((L ? d.getMonth() : d.getUTCMonth()) + 1) + "-" + pad(L ? d.getDate() : d.getUTCDate()) +
      " " + pad(L ? d.getHours() : d.getUTCHours()) + ":" + pad(L ? d.getMinutes() : d.getUTCMinutes()) + ":" + pad(L ? d.getSeconds() : d.getUTCSeconds());
    if (ms) s += "." + pad(L ? d.getMilliseconds() : d.getUTCMilliseconds(), 3);
    if (zone) s += " " + (L ? offsetName(d) : "UTC");
    return s;
  }
  // parseInputTime reads what a viewer types: "2026-12-03 10:02[:05[.123]]"
  // in the chosen zone, or any time with a zone (Z, +01:00).
  function parseInputTime(s) {
    s = s.trim();
    if (!s) return null;
    const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3})\d*)?)?\s*(Z|UTC|[+-]\d\d:?\d\d)?$/i.exec(s);
    if (!m) return null;
    const [y, mo, d, h, mi, se, ms] = [m[1], m[2], m[3], m[4], m[5], m[6] || "0", (m[7] || "0").padEnd(3, "0")].map(Number);
    if (m[8]) {
      const z = m[8].toUpperCase();
      let off = 0;
      if (z !== "Z" && z !== "UTC") {
        const zz = z.replace(":", "");
        off = (zz[0] === "-" ? -1 : 1) * (Number(zz.slice(1, 3)) * 60 + Number(zz.slice(3, 5)));
      }
      return new Date(Date.UTC(y, mo - 1, d, h, mi, se, ms) - off * 60000);
    }
    return tzLocal() ? new Date(y, mo - 1, d, h, mi, se, ms) : new Date(Date.UTC(y, mo - 1, d, h, mi, se, ms));
  }
  function applyClock() {
    for (const t of document.querySelectorAll("time[datetime]")) t.textContent = fmtTime(t.getAttribute("datetime"), false, true);
    for (const z of document.querySelectorAll("[data-tz-label]")) z.textContent = zoneLabel();
    const b = $("#tz");
    if (b) {
      b.textContent = "Times: " + zoneLabel();
      b.setAttribute("aria-pressed", tzLocal() ? "true" : "false");
    }
    document.dispatchEvent(new Event("syncer:clock"));
  }
  const tzBtn = $("#tz");
  if (tzBtn) {
    tzBtn.hidden = false;
    tzBtn.addEventListener("click", () => {
      localStorage.setItem(TZKEY, tzLocal() ? "utc" : "local");
      applyClock();
    });
  }
  applyClock();

  // ---------------------------------------------------------------- timeline
  function timelinePage() {
    const form = $("#tl-form");
    if (!form) return;
    const params = new URLSearchParams(location.search);
    const out = $("#tl-lines"), status = $("#tl-status"), moreBtn = $("#tl-more");
    const sinceIn = $("#tl-since"), untilIn = $("#tl-until"), lastSel = $("#tl-last");
    // The URL holds RFC 3339 times; the inputs show them in the chosen zone.
    function showInputs() {
      for (const [inp, k] of [[sinceIn, "since"], [untilIn, "until"]]) {
        const v = params.get(k);
        if (v && !isNaN(new Date(v))) inp.value = fmtTime(new Date(v), false, false);
      }
    }
    showInputs();
    document.addEventListener("syncer:clock", () => { showInputs(); for (const t of out.querySelectorAll("a.t")) t.textContent = fmtTime(t.dataset.time, true, false); });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      const last = lastSel.value;
      if (last) p.set("last", last);
      else {
        const s = parseInputTime(sinceIn.value), u = parseInputTime(untilIn.value);
        if (sinceIn.value && !s) { status.textContent = "From: not a time; write 2026-12-03 10:02:00 (" + zoneLabel() + ")"; status.classList.add("err"); sinceIn.focus(); return; }
        if (untilIn.value && !u) { status.textContent = "To: not a time; write 2026-12-03 10:05:00 (" + zoneLabel() + ")"; status.classList.add("err"); untilIn.focus(); return; }
        if (s) p.set("since", s.toISOString());
        if (u) p.set("until", u.toISOString());
      }
      for (const k of ["level", "path", "q", "exclude"]) {
        const v = form.elements[k].value;
        if (v) p.set(k, v);
      }
      for (const a of form.querySelectorAll("input[name=agent]:checked")) p.append("agent", a.value);
      if ($("#tl-live").checked) p.set("live", "1");
      location.search = p.toString();
    });
    sinceIn.addEventListener("input", () => { lastSel.value = ""; });
    untilIn.addEventListener("input", () => { lastSel.value = ""; });

    const api = new URLSearchParams();
    const last = params.get("last") || (params.get("since") ? "" : "15m");
    if (last) {
      const m = /^(\d+)([mhd])$/.exec(last);
      const ms = m ? Number(m[1]) * { m: 60000, h: 3600000, d: 86400000 }[m[2]] : 900000;
      api.set("since", new Date(Date.now() - ms).toISOString());
    } else if (params.get("since")) api.set("since", params.get("since"));
    if (params.get("until") && !last) api.set("until", params.get("until"));
    for (const k of ["level", "path", "q", "exclude"]) if (params.get(k)) api.set(k, params.get(k));
    for (const a of params.getAll("agent")) api.append("agent", a);
    api.set("max", "200");
    const live = params.get("live") === "1";
    const hl = jsRegExp(params.get("q") || "", true, true);
    let total = 0, cursor = "", lastKey = "", files = 0, skipped = 0, busy = false;

    function row(l) {
      const link = "/view/" + encPath(l.agent, l.path) + "?" + (l.line_no ? "line=" + l.line_no : "offset=" + l.offset);
      const t = el("a", { class: "t", href: link, title: l.time });
      t.dataset.time = l.time;
      t.textContent = fmtTime(l.time, true, false);
      const tx = el("span", { class: "tx" });
      textWithMarks(tx, l.text, hl);
      const lv = l.level || "";
      return el("div", { class: "tl-row" + (lv ? " lv-" + lv : "") + (l.cont ? " cont" : "") },
        t, el("span", { class: "lv", text: l.cont ? "" : lv.toUpperCase() }),
        el("a", { class: "src", href: link }, nameNode(l.agent + "/" + l.path)),
        tx);
    }
    function summary(extra) {
      status.classList.remove("err");
      status.textContent = total + " line" + (total === 1 ? "" : "s") + " · " + files + " file" + (files === 1 ? "" : "s") + " read, " + skipped + " skipped by their time span · times in " + zoneLabel() + (extra || "");
    }
    async function fetchPage(cur, following) {
      if (busy) return;
      busy = true;
      const q = new URLSearchParams(api);
      if (cur) q.set("cursor", cur);
      let added = 0;
      try {
        const r = await fetch("/api/v1/timeline?" + q, { credentials: "same-origin" });
        if (!r.ok) {
          let msg = r.status + "";
          try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
          throw new Error(msg);
        }
        const text = await r.text();
        const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 30;
        const rows = [];
        for (const line of text.split("\n")) {
          if (!line) continue;
          const m = JSON.parse(line);
          if (m.done) {
            files = Math.max(files, m.opened); skipped = Math.max(skipped, m.skipped);
            cursor = m.cursor || "";
            if (m.last) lastKey = m.last;
            continue;
          }
          const rw = row(m);
          if (following) rw.classList.add("new");
          rows.push(rw);
          added++;
        }
        if (!total && !rows.length && !following) out.replaceChildren(el("p", { class: "hint", text: "No line in this range." }));
        else if (rows.length) {
          if (!total) out.replaceChildren();
          out.append(...rows);
        }
        total += added;
        if (following && atBottom) out.scrollTop = out.scrollHeight;
        moreBtn.hidden = !cursor || live;
        summary(live ? " · live, last checked " + fmtTime(new Date(), false, true) : cursor ? " · more below" : " · complete");
      } catch (e) {
        status.textContent = "timeline failed: " + e.message;
        status.classList.add("err");
      } finally {
        busy = false;
      }
      status.dataset.done = "1";
      return added;
    }
    moreBtn.addEventListener("click", () => fetchPage(cursor, false));
    (async function () {
      status.textContent = "loading…";
      await fetchPage("", false);
      if (!live) return;
      // Live: drain what is there, then ask for what follows the last line
      // every two seconds.
      while (cursor) if (!(await fetchPage(cursor, false))) break;
      setInterval(() => { if (!document.hidden) fetchPage(lastKey, true); }, 2000);
    })();
  }

  // ---------------------------------------------------------------- file view
  function fileView() {
    const box = $("#viewer");
    if (!box) return;
    const enc = box.dataset.path;
    const gz = box.dataset.gz === "true";
    const linesEl = $("#lines"), statusEl = $("#status");
    const params = new URLSearchParams(location.search);
    const MAXROWS = 6000;
    let size = 0, start = 0, end = 0;
    let firstKnown = true; // line numbers known for the rows shown
    let loading = false;
    let re = null;
    let cur = null; // the row of the current match
    let es = null; // the live tail's EventSource

    const q = $("#q"), reBox = $("#re"), caseBox = $("#case"), wrap = $("#wrap");
    q.value = params.get("q") || "";
    reBox.checked = params.get("re") === "1";
    caseBox.checked = params.get("case") === "1";
    // Wrap: as the viewer last chose; on a phone, on until they choose.
    const wrapSaved = localStorage.getItem("syncer.wrap");
    wrap.checked = wrapSaved === null ? matchMedia("(max-width: 760px)").matches : wrapSaved === "1";
    linesEl.classList.toggle("wrap", wrap.checked);
    wrap.addEventListener("change", () => {
      linesEl.classList.toggle("wrap", wrap.checked);
      localStorage.setItem("syncer.wrap", wrap.checked ? "1" : "0");
    });

    function setStatus(msg, err) {
      statusEl.textContent = msg || "";
      statusEl.classList.toggle("err", !!err);
    }
    function setURL(mut) {
      const p = new URLSearchParams(location.search);
      mut(p);
      const s = p.toString();
      history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
    }
    function row(text, off, no) {
      const nEl = el("span", { class: "no", title: "byte " + off });
      nEl.textContent = no ? String(no) : "";
      const t = el("span", { class: "tx" });
      const r = el("div", { class: "ln" }, nEl, t);
      r.classList.toggle("hit", textWithMarks(t, text, re) > 0);
      r.dataset.off = off;
      if (no) r.dataset.no = no;
      return r;
    }
    // level colours a row: the level the server read from the line, or,
    // for a line without a time ("^"), the level of the line before it.
    function level(r, lv, prev) {
      if (lv === "^") lv = prev ? prev.dataset.lv || "" : "";
      if (!lv) return;
      r.dataset.lv = lv;
      r.classList.add("lv-" + lv);
    }
    function rowsFrom(d) {
      const out = [];
      for (let i = 0; i < d.lines.length; i++) {
        const r = row(d.lines[i], d.offsets[i], d.first_line ? d.first_line + i : 0);
        if (d.levels) level(r, d.levels[i], out[i - 1]);
        out.push(r);
      }
      // Each row's end is the next row's start, the last one's is d.end.
      for (let i = 0; i < out.length; i++) out[i].dataset.end = i + 1 < out.length ? d.offsets[i + 1] : d.end;
      return out;
    }
    function info() {
      let s = human(size) + (gz ? " decompressed" : "") + " · showing bytes " + start + "–" + end;
      if (!firstKnown) s += " · line numbers are being counted (shown once known)";
      setStatus(s);
    }
    // A window of 64 KiB (some 800 lines) paints at once whatever the
    // file's size; scrolling fetches the next one.
    const WIN = 65536;
    function api(kind, qs) { return "/api/v1/" + kind + "/" + enc + "?" + qs + (kind === "lines" ? "&bytes=" + WIN : ""); }

    // load replaces the rows with the window the query asks for.
    async function load(qs) {
      loading = true;
      try {
        const d = await getJSON(api("lines", qs));
        size = d.size;
        if (d.binary) { setStatus("binary file: download it instead"); return null; }
        linesEl.replaceChildren(...rowsFrom(d));
        start = d.start; end = d.end; firstKnown = d.first_line > 0 || d.lines.length === 0;
        cur = null;
        info();
        return d;
      } catch (e) {
        setStatus("could not load: " + e.message, true);
        return null;
      } finally {
        loading = false;
      }
    }
    async function more(down) {
      if (loading || es) return;
      if (down ? end >= size : start <= 0) return;
      loading = true;
      try {
        const d = await getJSON(api("lines", down ? "offset=" + end : "before=" + start));
        size = d.size;
        const rows = rowsFrom(d);
        if (down) {
          if (d.start !== end) return;
          linesEl.append(...rows);
          end = d.end;
          while (linesEl.children.length > MAXROWS) { start = +linesEl.firstChild.dataset.end; linesEl.firstChild.remove(); }
        } else {
          if (d.end !== start) return;
          const h = linesEl.scrollHeight;
          linesEl.prepend(...rows);
          linesEl.scrollTop += linesEl.scrollHeight - h;
          start = d.start;
          while (linesEl.children.length > MAXROWS) { end = +linesEl.lastChild.dataset.off; linesEl.lastChild.remove(); }
          if (d.first_line > 0 && !firstKnown) renumber(d.first_line);
        }
        info();
      } catch (e) {
        setStatus("could not load: " + e.message, true);
      } finally {
        loading = false;
      }
    }
    // renumber numbers all rows from n, once the first is known.
    function renumber(n) {
      for (const r of linesEl.children) {
        r.dataset.no = n;
        r.firstChild.textContent = String(n++);
      }
      firstKnown = true;
    }
    linesEl.addEventListener("scroll", () => {
      if (linesEl.scrollTop + linesEl.clientHeight > linesEl.scrollHeight - 400) more(true);
      else if (linesEl.scrollTop < 300) more(false);
    });
    // A click on a line number selects the line and puts it in the URL.
    linesEl.addEventListener("click", (ev) => {
      const no = ev.target.closest(".no");
      if (!no) return;
      const r = no.parentElement;
      for (const s of linesEl.querySelectorAll(".ln.sel")) s.classList.remove("sel");
      r.classList.add("sel");
      if (r.dataset.no) setURL((p) => { p.set("line", r.dataset.no); p.delete("end"); });
    });

    function rowAt(off) {
      for (const r of linesEl.children) if (+r.dataset.off === off) return r;
      return null;
    }
    function rehighlight() {
      let n = 0;
      for (const r of linesEl.children) {
        const t = r.lastChild;
        if (!t) continue;
        const text = t.textContent;
        t.replaceChildren();
        const k = textWithMarks(t, text, re);
        r.classList.toggle("hit", k > 0);
        n += k;
      }
      return n;
    }
    // "only matching" hides the rows the search does not match.
    const only = $("#only");
    function applyOnly() { linesEl.classList.toggle("only", !!(only && only.checked && re)); }
    if (only) {
      only.checked = params.get("only") === "1";
      only.addEventListener("change", () => {
        re = jsRegExp(q.value, reBox.checked, caseBox.checked);
        rehighlight();
        applyOnly();
        setURL((p) => { if (only.checked) p.set("only", "1"); else p.delete("only"); });
      });
    }
    // Jump to a time, typed in the page's zone.
    const jump = $("#jump");
    if (jump) jump.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const at = parseInputTime($("#jump-t").value);
      if (!at) { setStatus("not a time: write 2026-12-03 10:02:00 (" + zoneLabel() + ")", true); return; }
      stopTail();
      await openAt("time=" + encodeURIComponent(at.toISOString()));
      setURL((p) => { p.set("time", at.toISOString()); p.delete("line"); p.delete("end"); p.delete("offset"); });
    });
    // openAt loads the window a query names (offset=O, time=T), with
    // some lines before it, and selects its first line.
    async function openAt(qs) {
      const d = await load(qs);
      if (!d) return;
      const first = d.lines.length ? d.offsets[0] : -1;
      if (d.start > 0) await more(false);
      const r = first >= 0 ? rowAt(first) : null;
      if (r) markCurrent(r);
      else setStatus("no line at or after that time: showing the end");
    }
    function markCurrent(r) {
      for (const m of linesEl.querySelectorAll("mark.cur")) m.classList.remove("cur");
      for (const s of linesEl.querySelectorAll(".ln.sel")) s.classList.remove("sel");
      cur = r;
      if (!r) return;
      r.classList.add("sel");
      const m = r.querySelector("mark");
      if (m) m.classList.add("cur");
      r.scrollIntoView({ block: "center" });
    }
    // find asks the server for the next or previous matching line and
    // shows it, loading its window if it is not among the rows.
    async function find(dir) {
      const text = q.value;
      if (!text) return;
      stopTail();
      re = jsRegExp(text, reBox.checked, caseBox.checked);
      rehighlight();
      applyOnly();
      setURL((p) => {
        p.set("q", text);
        if (reBox.checked) p.set("re", "1"); else p.delete("re");
        if (caseBox.checked) p.set("case", "1"); else p.delete("case");
      });
      let from;
      if (cur) from = dir === "next" ? +cur.dataset.end : +cur.dataset.off;
      else {
        const first = firstVisible();
        from = dir === "next" ? (first ? +first.dataset.off : start) : (first ? +first.dataset.off : end);
      }
      setStatus("searching…");
      for (;;) {
        let f;
        try {
          f = await getJSON(api("find", new URLSearchParams({ q: text, from: String(from), dir: dir, regex: reBox.checked ? "1" : "0", case: caseBox.checked ? "1" : "0" }).toString()));
        } catch (e) {
          setStatus("search failed: " + e.message, true);
          return;
        }
        if (f.found) {
          let r = rowAt(f.offset);
          if (!r) {
            await load("offset=" + f.offset);
            r = rowAt(f.offset);
          }
          markCurrent(r);
          info();
          setStatus(statusEl.textContent + " · match at line " + (r && r.dataset.no ? r.dataset.no : "byte " + f.offset));
          return;
        }
        if (!f.more) {
          setStatus("no " + (dir === "next" ? "further" : "earlier") + " match for " + JSON.stringify(text));
          return;
        }
        from = f.scanned;
        setStatus("searching… (" + human(from) + ")");
      }
    }
    function firstVisible() {
      const top = linesEl.getBoundingClientRect().top;
      for (const r of linesEl.children) if (r.getBoundingClientRect().bottom > top) return r;
      return null;
    }
    $("#find").addEventListener("submit", (ev) => { ev.preventDefault(); find("next"); });
    $("#btn-prev").addEventListener("click", () => find("prev"));
    q.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && ev.shiftKey) { ev.preventDefault(); find("prev"); } });

    $("#btn-start").addEventListener("click", async () => {
      stopTail();
      await load("offset=0");
      linesEl.scrollTop = 0;
      setURL((p) => { p.delete("line"); p.delete("end"); });
    });
    $("#btn-end").addEventListener("click", async () => {
      stopTail();
      await toEnd();
      setURL((p) => { p.delete("line"); p.set("end", "1"); });
    });
    async function toEnd() {
      await load("end=1");
      linesEl.scrollTop = linesEl.scrollHeight;
    }

    // Live tail: follow appends with server-sent events; pause stops it.
    const tailBtn = $("#btn-tail");
    function stopTail() {
      if (!es) return;
      es.close();
      es = null;
      if (tailBtn) { tailBtn.setAttribute("aria-pressed", "false"); tailBtn.textContent = "▶ Live tail"; }
      setURL((p) => p.delete("tail"));
      info();
    }
    async function startTail() {
      await toEnd();
      tailBtn.setAttribute("aria-pressed", "true");
      tailBtn.textContent = "⏸ Pause";
      setURL((p) => { p.set("tail", "1"); p.delete("line"); p.delete("end"); });
      es = new EventSource(api("tail", "offset=" + end));
      es.addEventListener("lines", (ev) => {
        const d = JSON.parse(ev.data);
        if (d.start !== end) return;
        const atBottom = linesEl.scrollTop + linesEl.clientHeight >= linesEl.scrollHeight - 30;
        let no = 0;
        const last = linesEl.lastElementChild;
        if (last && last.dataset.no) no = +last.dataset.no + 1;
        const rows = [];
        for (let i = 0; i < d.lines.length; i++) {
          const r = row(d.lines[i], d.offsets[i], no ? no + i : 0);
          r.dataset.end = i + 1 < d.lines.length ? d.offsets[i + 1] : d.end;
          r.classList.add("new");
          if (d.levels) level(r, d.levels[i], i ? rows[i - 1] : last);
          rows.push(r);
        }
        // The header follows the file too.
        const fs = $("#f-size"), fm = $("#f-mtime");
        if (fs && d.size) { fs.textContent = human(d.size); fs.title = d.size + " bytes"; }
        if (fm && d.mtime) fm.replaceChildren(el("time", { datetime: d.mtime, text: fmtTime(d.mtime, false, true) }));
        linesEl.append(...rows);
        end = d.end;
        size = Math.max(size, end);
        while (linesEl.children.length > MAXROWS) { start = +linesEl.firstChild.dataset.end; linesEl.firstChild.remove(); }
        if (atBottom) linesEl.scrollTop = linesEl.scrollHeight;
        setStatus("following · " + human(size) + " · last update " + fmtTime(new Date(), false, true));
      });
      es.addEventListener("skip", (ev) => {
        const d = JSON.parse(ev.data);
        linesEl.append(el("div", { class: "gap", text: "… skipped to byte " + d.offset + " (the file grew faster than shown) …" }));
        end = d.offset;
      });
      es.addEventListener("reset", () => {
        stopTail();
        setStatus("the file was replaced (the old content is kept as a version); reloading", false);
        startTail();
      });
      es.addEventListener("open", () => setStatus("following · " + human(size)));
      es.addEventListener("error", () => { if (es) setStatus("live tail: reconnecting…", true); });
    }
    if (tailBtn) tailBtn.addEventListener("click", () => { if (es) stopTail(); else startTail(); });

    // Open as the URL says; a live log with nothing asked opens at its
    // end and follows it.
    (async function () {
      re = jsRegExp(q.value, reBox.checked, caseBox.checked);
      applyOnly();
      const line = parseInt(params.get("line") || "", 10);
      const asked = ["line", "offset", "time", "q", "end", "tail"].some((k) => params.has(k));
      if ((params.get("tail") === "1" || (!asked && box.dataset.live === "true")) && tailBtn) {
        await startTail();
      } else if (params.has("offset")) {
        await openAt("offset=" + (parseInt(params.get("offset"), 10) || 0));
      } else if (params.has("time")) {
        await openAt("time=" + encodeURIComponent(params.get("time")));
      } else if (params.get("end") === "1") {
        await toEnd();
      } else if (line > 1) {
        const d = await load("line=" + line);
        if (d && d.start > 0) await more(false);
        const r = [...linesEl.children].find((x) => +x.dataset.no === line);
        if (r) markCurrent(r);
      } else {
        await load("offset=0");
        if (q.value) find("next");
      }
    })();
  }

  // ---------------------------------------------------------------- agent tree
  function agentTree() {
    const tree = $("#tree");
    if (!tree) return;
    const base = tree.dataset.base, current = tree.dataset.cur;
    const hint = $(".js-only", tree);
    async function fill(ul, encDir, after) {
      let d;
      try {
        d = await getJSON("/api/v1/files/" + encDir + "?limit=500" + (after ? "&after=" + encodeURIComponent(after) : ""));
      } catch (e) {
        ul.append(el("li", { class: "hint", text: "could not load: " + e.message }));
        return;
      }
      for (const e of d.entries) {
        const p = encPath(d.agent, e.path, e.path_b64);
        if (e.type === "dir") {
          const sub = el("ul");
          // The summary only opens and closes (a link inside it would be
          // a control inside a control); the listing links to the folder.
          const det = el("details", {}, el("summary", { title: "open or close " + e.name + "/" }, nameNode(e.name, e.name_flags), "/"), sub);
          let loaded = false;
          det.addEventListener("toggle", () => {
            if (det.open && !loaded) { loaded = true; fill(sub, p); }
          });
          const li = el("li", {}, det);
          if (current === p || current.startsWith(p + "/")) {
            li.classList.add("cur");
            det.open = true;
          }
          ul.append(li);
        } else {
          const a = el("a", { class: "file", href: "/view/" + p, title: human(e.size) }, nameNode(e.name, e.name_flags));
          ul.append(el("li", {}, a));
        }
      }
      if (d.next) {
        const btn = el("button", { type: "button", text: "more…" });
        const li = el("li", {}, btn);
        btn.addEventListener("click", () => { li.remove(); fill(ul, encDir, d.next); });
        ul.append(li);
      }
    }
    const top = el("ul");
    const rootLink = el("a", { href: "/agent/" + base }, nameNode(tree.dataset.agent), "/");
    if (current === base) rootLink.classList.add("cur");
    tree.append(el("ul", {}, el("li", {}, rootLink, top)));
    if (hint) hint.remove();
    fill(top, base);

    const filter = $("#filter");
    if (filter) {
      filter.addEventListener("input", () => {
        const f = filter.value.toLowerCase();
        for (const r of document.querySelectorAll("#listing tbody tr")) {
          r.hidden = f !== "" && !r.textContent.toLowerCase().includes(f);
        }
      });
    }
  }

  // ---------------------------------------------------------------- search
  function searchPage() {
    const params = new URLSearchParams(location.search);
    const nameOut = $("#name-results");
    if (params.get("name")) {
      nameOut.textContent = "searching…";
      const qs = new URLSearchParams({ name: params.get("name"), limit: "1000" });
      getJSON("/api/v1/search?" + qs).then((d) => {
        nameOut.replaceChildren();
        const tb = el("tbody");
        for (const e of d.results) {
          const p = encPath(e.agent, e.path, e.path_b64);
          tb.append(el("tr", {},
            el("td", {}, el("a", { href: "/agent/" + encPath(e.agent, "") }, nameNode(e.agent))),
            el("td", {}, el("a", { href: "/view/" + p }, nameNode(e.path, e.name_flags))),
            el("td", { class: "n", text: human(e.size) }),
            el("td", { text: when(e.mtime) }),
            el("td", {}, el("span", { class: "badge st-" + e.status, text: e.status }))));
        }
        nameOut.append(el("p", { class: "status", text: d.results.length + " file" + (d.results.length === 1 ? "" : "s") + (d.truncated ? " (more not shown: narrow the glob)" : "") }));
        if (d.results.length) {
          nameOut.append(el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Files found" }, el("table", { class: "grid", id: "name-table" },
            el("thead", {}, el("tr", {}, el("th", { text: "Agent" }), el("th", { text: "Path" }), el("th", { class: "n", text: "Size" }), el("th", { text: "Modified" }), el("th", { text: "Status" }))), tb)));
        }
      }).catch((e) => { nameOut.textContent = "search failed: " + e.message; });
    }

    const q = params.get("q");
    if (!q) return;
    const out = $("#grep-results"), status = $("#grep-status"), stop = $("#grep-stop");
    const agents = params.getAll("agent");
    const max = Math.max(1, parseInt(params.get("max") || "500", 10) || 500);
    const tlimit = params.get("timeout") || "20s";
    const ctl = new AbortController();
    stop.disabled = false;
    stop.addEventListener("click", () => ctl.abort());
    const hl = jsRegExp(q, true, true);
    let matches = 0, files = 0, reason = "";
    const t0 = performance.now();
    // A range or order=time asks for hits in time order, across the
    // agents at once: times are typed in the page's zone.
    const since = parseInputTime(params.get("since") || ""), until = parseInputTime(params.get("until") || "");
    if ((params.get("since") && !since) || (params.get("until") && !until)) {
      status.textContent = "From/To: not a time; write 2026-12-03 10:02:00 (" + zoneLabel() + ")";
      status.classList.add("err");
      return;
    }
    const byTime = !!(since || until || params.get("order") === "time");
    function show(m) {
      const p = encPath(m.agent, m.path, m.path_b64);
      const link = "/view/" + p + "?" + new URLSearchParams({ line: String(m.line), q: q, re: "1", case: "1" });
      const tx = el("span", { class: "tx" });
      textWithMarks(tx, m.text, hl);
      const where = el("a", { class: "where", href: link }, nameNode(m.agent + "/" + m.path, m.name_flags));
      if (m.time) where.prepend(el("span", { class: "when", text: fmtTime(m.time, true, false) + " " }));
      out.append(el("div", { class: "hit" + (m.level ? " lv-" + m.level : "") },
        where,
        el("a", { class: "ln", href: link, text: String(m.line) }),
        tx));
    }
    function progress(done) {
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      let s = matches + " match" + (matches === 1 ? "" : "es") + " in " + files + " files searched, " + secs + " s";
      if (done) {
        s += { limit: " · stopped at the result limit", timeout: " · stopped at the time limit", stopped: " · stopped", error: " · ended early (server error)" }[reason] || " · complete";
      } else s += " · searching…";
      status.textContent = s;
    }
    (async function () {
      const deadline = performance.now() + parseDurationMs(tlimit);
      const targets = agents.length && !byTime ? agents : [""];
      try {
        for (const a of targets) {
          const left = max - matches;
          const ms = Math.max(1, Math.floor(deadline - performance.now()));
          if (left <= 0) { reason = "limit"; break; }
          if (deadline - performance.now() <= 0) { reason = "timeout"; break; }
          const qs = new URLSearchParams({ q: q, max: String(left), timeout: ms + "ms" });
          if (a) qs.set("agent", a);
          if (byTime) {
            for (const x of agents) qs.append("agent", x);
            qs.set("order", "time");
            if (since) qs.set("since", since.toISOString());
            if (until) qs.set("until", until.toISOString());
          }
          if (params.get("path")) qs.set("path", params.get("path"));
          const r = await fetch("/api/v1/grep?" + qs, { signal: ctl.signal, credentials: "same-origin" });
          if (!r.ok) {
            let msg = r.status + "";
            try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
            throw new Error(msg);
          }
          const reader = r.body.getReader();
          const dec = new TextDecoder();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (value) buf += dec.decode(value, { stream: true });
            let i;
            while ((i = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, i);
              buf = buf.slice(i + 1);
              if (!line) continue;
              const m = JSON.parse(line);
              if (m.done) { files += m.files; if (m.reason) reason = m.reason; } else { matches++; show(m); }
            }
            progress(false);
            if (done) break;
          }
          if (reason) break;
        }
      } catch (e) {
        if (e.name === "AbortError") reason = "stopped";
        else { status.textContent = "search failed: " + e.message; status.classList.add("err"); stop.disabled = true; return; }
      }
      stop.disabled = true;
      progress(true);
      status.dataset.done = "1";
      if (!matches) out.append(el("p", { class: "hint", text: "No line matches." }));
    })();
  }
  function parseDurationMs(s) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
    if (!m) return 20000;
    const n = parseFloat(m[1]);
    return m[2] === "ms" ? n : m[2] === "m" ? n * 60000 : n * 1000;
  }

  // ---------------------------------------------------------------- connections
  function connectionsPage() {
    const tb = $("#conns tbody");
    if (!tb) return;
    const ago = (s) => {
      if (!s || s.startsWith("0001-")) return "—";
      const d = (Date.now() - Date.parse(s)) / 1000;
      if (d < 60) return Math.max(0, Math.floor(d)) + "s ago";
      if (d < 3600) return Math.floor(d / 60) + "m ago";
      return Math.floor(d / 3600) + "h ago";
    };
    async function refresh() {
      let d;
      try { d = await getJSON("/api/v1/connections"); } catch (e) { $("#conn-updated").textContent = "(update failed: " + e.message + ")"; return; }
      const rows = d.connections.sort((a, b) => a.id - b.id).map((c) => {
        const tr = el("td");
        for (const t of c.transfers) tr.append(el("div", {}, t.upload ? "upload " : "download ", nameNode(t.path), " · " + human(t.bytes) + (t.offset ? " from " + human(t.offset) : "")));
        return el("tr", {},
          el("td", { text: String(c.id) }),
          el("td", {}, c.user ? c.user : el("i", { text: "not logged in" })),
          el("td", {}, c.remote_addr, c.tls ? el("span", { class: "badge st-active", text: "TLS" }) : null),
          el("td", { text: ago(c.connected_at), title: c.connected_at }),
          el("td", { class: "n", text: human(c.bytes_in) }),
          el("td", { class: "n", text: human(c.bytes_out) }),
          el("td", {}, el("code", { text: c.command })),
          tr);
      });
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "8", class: "empty", text: "No FTP session right now." })));
      tb.replaceChildren(...rows);
      $("#conn-updated").textContent = "Updated " + fmtTime(new Date(), false, true) + ".";
    }
    setInterval(() => { if (!document.hidden) refresh(); }, 2000);
    // Lifting a ban: a same-origin DELETE (no form can send one, and the
    // server refuses it from any other origin).
    const bans = $("#bans");
    if (bans) bans.addEventListener("click", async (ev) => {
      const b = ev.target.closest("button.unban");
      if (!b) return;
      b.disabled = true;
      const st = $("#ban-status");
      try {
        await getJSON("/api/v1/bans/" + encodeURIComponent(b.dataset.addr), { method: "DELETE" });
        b.closest("tr").remove();
        st.textContent = "Ban of " + b.dataset.addr + " lifted.";
      } catch (e) {
        st.textContent = "Could not lift the ban of " + b.dataset.addr + ": " + e.message;
        b.disabled = false;
      }
    });
  }

  const pages = { view: fileView, agent: agentTree, search: searchPage, connections: connectionsPage, timeline: timelinePage };
  const run = pages[document.body.dataset.page];
  if (run) run();
})();
