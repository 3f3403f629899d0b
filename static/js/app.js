// A form with data-confirm asks first (a destructive action needs a yes).
document.addEventListener(
  "submit",
  (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  },
  true,
);

// Ctrl/Cmd+Enter in the studio form submits it (through htmx when it is loaded).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const form = event.target.closest && event.target.closest("#generate-form");
  if (!form) return;
  event.preventDefault();
  form.requestSubmit();
});

// Reference images: drop or paste image files onto the studio form to add them to its file input.
function addReferenceFiles(files) {
  const input = document.querySelector("#generate-form input[type=file]");
  if (!input || !files.length) return;
  const all = new DataTransfer();
  for (const file of input.files) all.items.add(file);
  for (const file of files) if (file.type.startsWith("image/")) all.items.add(file);
  input.files = all.files;
  showUploads(input);
}
document.addEventListener("dragover", (event) => {
  const box = event.target.closest && event.target.closest("#generate-form");
  if (!box) return;
  event.preventDefault();
  document.getElementById("references")?.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.getElementById("references")?.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  if (!(event.target.closest && event.target.closest("#generate-form"))) return;
  event.preventDefault();
  document.getElementById("references")?.classList.remove("dragging");
  addReferenceFiles(event.dataTransfer.files);
});
document.addEventListener("paste", (event) => {
  if (!document.getElementById("generate-form")) return;
  const files = [...(event.clipboardData?.files || [])];
  if (files.length) addReferenceFiles(files);
});
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("[data-remove-reference]");
  if (button) button.closest("li").remove();
});
// After Generate, the new card comes into view (on a phone it lands below the form).
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "jobs" && event.detail.requestConfig?.verb === "post") {
    document.querySelector("#jobs > article")?.scrollIntoView({ block: "nearest" });
  }
});
// Uploaded references show as thumbnails, each with its own Remove, like earlier results picked.
// Both stay after Generate, for the next try at the same edit.
function showUploads(input) {
  let list = document.getElementById("uploads");
  if (!list) {
    list = document.createElement("ul");
    list.id = "uploads";
    list.className = "picked";
    list.setAttribute("aria-label", "Images to upload");
    input.before(list);
  }
  for (const image of list.querySelectorAll("img")) URL.revokeObjectURL(image.src);
  list.replaceChildren(...[...input.files].map((file, index) => {
    const item = document.createElement("li");
    const image = document.createElement("img");
    Object.assign(image, { src: URL.createObjectURL(file), alt: file.name, width: 56, height: 56 });
    const remove = document.createElement("button");
    Object.assign(remove, { type: "button", className: "link small", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.dataset.removeUpload = index;
    item.append(image, remove);
    return item;
  }));
}
document.addEventListener("change", (event) => {
  if (event.target.matches && event.target.matches("#generate-form input[type=file]")) showUploads(event.target);
});
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("[data-remove-upload]");
  const input = document.querySelector("#generate-form input[type=file]");
  if (!button || !input) return;
  const kept = new DataTransfer();
  const removed = Number(button.dataset.removeUpload);
  [...input.files].forEach((file, index) => {
    if (index !== removed) kept.items.add(file);
  });
  input.files = kept.files;
  showUploads(input);
});

// Lightbox (gallery, boards, the studio's results): a click on a thumbnail opens the display-size image; arrow keys move, Esc
// closes. Its forms (add to a board, take off this board) act on the image shown.
// Without JavaScript the thumbnail is a plain link to the detail page.
(() => {
  let current = null;
  const dialog = () => document.getElementById("lightbox");
  const THUMBNAILS = "#feed a[data-lightbox], #jobs a[data-lightbox]";
  const links = () => [...document.querySelectorAll(THUMBNAILS)];
  function show(link) {
    current = link;
    const box = dialog();
    box.querySelector("img").src = link.dataset.lightbox;
    box.querySelector("img").alt = link.dataset.caption;
    box.querySelector("figcaption").textContent = link.dataset.caption;
    for (const input of box.querySelectorAll("[data-lightbox-pick]")) input.value = link.dataset.pick;
    const details = box.querySelector("[data-lightbox-detail]");
    if (details) details.href = link.href;
    const studio = document.body.dataset.studioUrl;
    box.querySelector("[data-lightbox-download]").href = link.dataset.original;
    box.querySelector("[data-lightbox-edit]").href = `${studio}?pick=${link.dataset.pick}`;
    box.querySelector("[data-lightbox-reuse]").href = `${studio}?from=${link.dataset.pick}`;
    const all = links();
    box.querySelector("[data-lightbox-move='-1']").disabled = all.indexOf(link) <= 0;
    box.querySelector("[data-lightbox-move='1']").disabled = all.indexOf(link) >= all.length - 1;
    box.querySelector("[data-lightbox-position]").textContent = `${all.indexOf(link) + 1} of ${all.length}`;
    const stars = box.querySelector("[data-lightbox-stars]");
    stars.replaceChildren(); // this image's stars, as they are now
    if (link.dataset.rate) htmx.ajax("GET", `${link.dataset.rate}?where=lightbox`, { target: stars, swap: "innerHTML" });
    const status = box.querySelector("#lightbox-status");
    if (status) status.textContent = "";
    if (!box.open) box.showModal();
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest(THUMBNAILS);
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    show(link);
  });
  function move(step) {
    const all = links();
    const next = all[all.indexOf(current) + step];
    if (next) show(next);
  }
  document.addEventListener("keydown", (event) => {
    const box = dialog();
    if (!box || !box.open || !current) return;
    if (event.target.closest && event.target.closest("select, input, textarea")) return; // arrows change the board choice
    if (event.key === "ArrowRight") move(1);
    if (event.key === "ArrowLeft") move(-1);
  });
  document.addEventListener("click", (event) => {
    const box = dialog();
    if (!box) return;
    const button = event.target.closest && event.target.closest("[data-lightbox-move], [data-lightbox-close]");
    if (event.target === box || (button && "lightboxClose" in button.dataset)) box.close();
    else if (button && box.contains(button)) move(Number(button.dataset.lightboxMove));
  });
  // Stars given in the viewer show on the image's card too.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (!event.detail.target.matches("[data-lightbox-stars]") || event.detail.requestConfig?.verb !== "post") return;
    const rated = event.detail.target.querySelector("[data-rating-of]");
    const card = rated && document.querySelector(`[data-card-rating="${rated.dataset.ratingOf}"]`);
    if (card) htmx.ajax("GET", rated.getAttribute("action"), { target: card, swap: "outerHTML" });
  });
  // A swipe on a phone moves to the previous or next image.
  let touch = null;
  document.addEventListener("touchstart", (event) => {
    touch = dialog()?.open && event.touches.length === 1 ? event.touches[0] : null;
  }, { passive: true });
  document.addEventListener("touchend", (event) => {
    if (!touch) return;
    const dx = event.changedTouches[0].clientX - touch.clientX;
    const dy = event.changedTouches[0].clientY - touch.clientY;
    touch = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) move(dx < 0 ? 1 : -1);
  });
  // Focus goes back to the thumbnail the viewer was opened from.
  document.addEventListener("close", (event) => {
    if (event.target === dialog() && current) current.focus();
  }, true);
})();

// One live-update channel per page. While anything on the page runs (elements with
// data-live="<job>.<version>"), one request a second asks the page's channel
// (data-live-url) for the jobs that changed since those versions; the answer swaps the
// changed cards in place (htmx out-of-band swaps), or is 204 when nothing changed.
// Nothing is asked while nothing runs; a hidden tab asks every few seconds, enough to
// tell its person (title, notification) that something finished.
(() => {
  const PERIOD = 1000;
  const HIDDEN_PERIOD = 5000;
  let timer = null;
  let asking = false;
  let askedAt = Date.now(); // the page itself is fresh
  const channel = () => document.querySelector("[data-live-url]");
  const watched = () => [...document.querySelectorAll("[data-live]")];

  function schedule() {
    if (timer || asking || !channel() || !watched().length) return;
    // A second after the last question was asked (not answered): at most one a second.
    const period = document.hidden ? HIDDEN_PERIOD : PERIOD;
    timer = setTimeout(ask, Math.max(0, askedAt + period - Date.now()));
  }
  function ask() {
    timer = null;
    const source = channel();
    const versions = watched().map((element) => element.dataset.live);
    if (!source || !versions.length) return;
    asking = true;
    askedAt = Date.now();
    const done = () => {
      asking = false;
      const ended = versions.map((version) => version.split(".")[0]).filter((job) => !document.querySelector(`[data-live^="${job}."]`));
      if (ended.length) document.dispatchEvent(new CustomEvent("nanoweb:finished", { detail: { jobs: ended } }));
      schedule();
    };
    const url = `${source.dataset.liveUrl}?v=${encodeURIComponent(versions.join(","))}`;
    htmx.ajax("GET", url, { source, swap: "none" }).then(done, done);
  }
  document.addEventListener("DOMContentLoaded", schedule);
  document.addEventListener("htmx:afterSettle", schedule); // new cards after a submission
  document.addEventListener("visibilitychange", schedule);

  // A running card's seconds count on here between its updates: the time it has taken, and
  // the wait before a retry.
  const shown = new WeakMap();
  const since = (element, seconds) => {
    if (!shown.has(element)) shown.set(element, Date.now() - seconds * 1000);
    return (Date.now() - shown.get(element)) / 1000;
  };
  setInterval(() => {
    for (const span of document.querySelectorAll("[data-live] [data-elapsed]")) {
      span.textContent = `${Math.round(since(span, span.dataset.elapsed))} s`;
    }
    for (const line of document.querySelectorAll("[data-live] [data-retry-in]")) {
      const left = Math.max(0, Math.ceil(line.dataset.retryIn - since(line, 0)));
      line.textContent = line.textContent.replace(/in \d+ s,/, `in ${left} s,`);
    }
  }, PERIOD);
})();

// Gallery selection: the bar shows only while something is picked, with how many; select all / clear.
(() => {
  const boxes = () => [...document.querySelectorAll("input[name=pick][form=selection]")];
  function update() {
    const bar = document.getElementById("selection");
    if (!bar) return;
    const count = boxes().filter((box) => box.checked).length;
    bar.hidden = count === 0;
    bar.querySelector("[data-selected-count]").textContent = `${count} selected`;
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("input[name=pick][form=selection]")) update();
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#selection [data-select]");
    if (!button) return;
    for (const box of boxes()) box.checked = button.dataset.select === "all";
    update();
  });
  document.addEventListener("DOMContentLoaded", update);
  document.addEventListener("htmx:afterSettle", update);
})();

// While the tab is in the background, finished jobs show in its title ("(2) done · Studio")
// and, for those who turned it on, as a browser notification. Both reset on return.
(() => {
  const title = document.title;
  let away = 0;
  const toggle = () => document.querySelector("[data-notify-toggle]");
  const wanted = () => "Notification" in window && Notification.permission === "granted" && localStorage.getItem("nanoweb-notify") === "on";
  function showToggle() {
    const button = toggle();
    if (!button || !("Notification" in window)) return;
    button.hidden = false;
    button.setAttribute("aria-pressed", String(wanted()));
    button.textContent = wanted() ? "Notifications on" : "Notify me when a job finishes";
  }
  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-notify-toggle]")) return;
    if (wanted()) {
      localStorage.setItem("nanoweb-notify", "off");
      showToggle();
      return;
    }
    Notification.requestPermission().then((permission) => {
      localStorage.setItem("nanoweb-notify", permission === "granted" ? "on" : "off");
      showToggle();
    });
  });
  document.addEventListener("nanoweb:finished", (event) => {
    if (!document.hidden) return;
    away += event.detail.jobs.length;
    document.title = `(${away}) done · ${title}`;
    if (wanted()) new Notification("nanoweb", { body: away === 1 ? "A job finished." : `${away} jobs finished.`, tag: "nanoweb-finished" });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    away = 0;
    document.title = title;
  });
  document.addEventListener("DOMContentLoaded", showToggle);
})();

// "New board…" in a board picker asks for the new board's name beside it.
document.addEventListener("change", (event) => {
  const picker = event.target.closest && event.target.closest("[data-board-picker]");
  const name = picker?.parentElement.querySelector("[data-new-board]");
  if (!name) return;
  name.hidden = picker.value !== "new";
  if (!name.hidden) name.querySelector("input").focus();
});
