// Small conveniences only: every feature works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" in the queue.
  for (const all of document.querySelectorAll("[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of all.closest("form").querySelectorAll('input[name="ticket"]')) {
        box.checked = all.checked;
      }
    });
  }
  // Keyboard: "/" search, "r" reply, "n" next page (not while typing).
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    const pick = (key) => document.querySelector(`[data-key="${key}"]`);
    const element = event.key === "/" ? pick("/") : event.key === "r" ? pick("r") : event.key === "n" ? pick("n") : null;
    if (!element) return;
    event.preventDefault();
    if (element.tagName === "A") element.click(); else element.focus();
  });
});

// Live updates: a page that says what it shows (<main data-live="ticket task"
// data-live-ticket="12">, or data-live-task="7") listens to /portal/events and, when something it shows changes,
// fetches itself again and swaps in its [data-live-region] parts. Forms outside those
// parts are left alone, so a draft being typed is never lost; inside them, ticked boxes
// and chosen options are carried over.
document.addEventListener("DOMContentLoaded", () => {
  const main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) return;
  const kinds = main.dataset.live.split(" ");
  const ticket = main.dataset.liveTicket ? Number(main.dataset.liveTicket) : null;
  const task = main.dataset.liveTask ? Number(main.dataset.liveTask) : null;
  const shows = (change) =>
    change.kind === "resync" ||
    (kinds.includes(change.kind) &&
      (ticket === null || change.ticket === ticket) &&
      (task === null || change.task === task));

  let busy = false, again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { "X-Live": "1" } });
      if (response.ok && !response.redirected) swap(await response.text());
    } catch (_) { /* offline for a moment: the next change tries again */ }
    busy = false;
    if (again) { again = false; refresh(); }
  };

  const swap = (html) => {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const region of document.querySelectorAll("[data-live-region]")) {
      const name = region.dataset.liveRegion;
      const next = fresh.querySelector(`[data-live-region="${name}"]`);
      if (!next || next.innerHTML === region.innerHTML) continue;
      carryOver(region, next);
      region.replaceWith(document.importNode(next, true));
    }
    main.dataset.liveUpdated = String(Date.now());
    document.dispatchEvent(new CustomEvent("maildesk:live"));
  };

  // What the user did inside a region survives its refresh: ticks, choices, open details.
  const carryOver = (old, next) => {
    for (const box of old.querySelectorAll("input[type=checkbox][name]:checked")) {
      const twin = next.querySelector(`input[type=checkbox][name="${CSS.escape(box.name)}"][value="${CSS.escape(box.value)}"]`);
      if (twin) twin.setAttribute("checked", "");
    }
    for (const select of old.querySelectorAll("select[name]")) {
      const twin = next.querySelector(`select[name="${CSS.escape(select.name)}"]`);
      const option = twin && twin.querySelector(`option[value="${CSS.escape(select.value)}"]`);
      if (option) { for (const o of twin.options) o.removeAttribute("selected"); option.setAttribute("selected", ""); }
    }
    for (const details of old.querySelectorAll("details[open]")) {
      const holder = details.closest("[id]");
      const twin = holder && next.querySelector(`#${CSS.escape(holder.id)} details`);
      if (twin) twin.setAttribute("open", "");
    }
  };

  // Browsers allow few connections per server: a page being left closes its stream at
  // once (not when it is finally torn down), and one restored from the back-forward
  // cache opens a new one and catches up.
  let source = null;
  const connect = () => {
    source = new EventSource("/portal/events");
    source.addEventListener("ready", () => { main.dataset.liveReady = "1"; });
    source.addEventListener("changes", (event) => {
      let changes = [];
      try { changes = JSON.parse(event.data); } catch (_) { return; }
      if (changes.some(shows)) refresh();
    });
  };
  window.addEventListener("pagehide", () => { if (source) { source.close(); source = null; } });
  window.addEventListener("pageshow", (event) => { if (event.persisted && !source) { connect(); refresh(); } });
  connect();
});
