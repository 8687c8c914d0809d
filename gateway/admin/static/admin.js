// modelgate admin: small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A list row opens its request (the time cell is the real link).
  for (const row of document.querySelectorAll("tr[data-href]")) {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input")) return;
      window.location.href = row.dataset.href;
    });
  }

  // "/" focuses the free-text filter.
  const search = document.getElementById("q");
  if (search) {
    document.addEventListener("keydown", (event) => {
      if (event.key === "/" && document.activeElement.tagName !== "INPUT") {
        event.preventDefault();
        search.focus();
      }
    });
  }

  // A finding's number jumps to its evidence in the bodies, cycling through the marks.
  const cursor = new Map();
  for (const button of document.querySelectorAll("button.jump")) {
    button.addEventListener("click", () => {
      const marks = document.querySelectorAll(`mark.ev[data-finding="${button.dataset.finding}"]`);
      if (marks.length === 0) {
        button.title = "its evidence does not appear in the stored bodies";
        button.disabled = true;
        return;
      }
      for (const old of document.querySelectorAll("mark.ev.focus")) old.classList.remove("focus");
      const next = (cursor.get(button) ?? -1) + 1;
      cursor.set(button, next % marks.length);
      const mark = marks[next % marks.length];
      mark.classList.add("focus");
      mark.scrollIntoView({ block: "center" });
    });
  }

  // Digests copy themselves on click.
  for (const code of document.querySelectorAll("[data-copy]")) {
    code.addEventListener("click", () => {
      if (!code.dataset.copy || !navigator.clipboard) return;
      navigator.clipboard.writeText(code.dataset.copy).then(() => {
        code.classList.add("copied");
        setTimeout(() => code.classList.remove("copied"), 800);
      }, () => {});
    });
  }

  // Approvals ask once more, naming the tool.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // A page that waits for background work (verification) reloads itself.
  const waiting = document.querySelector("[data-refresh]");
  if (waiting) setTimeout(() => window.location.reload(), 1000 * Number(waiting.dataset.refresh || 2));
});
