/* render(body, payload, key): draw a payload into a container; the selection survives re-rendering
   under the same key (a live explorer replacing its picture keeps the query the reader chose) */
AV.render = function (body, d, key) {
  var root = body.closest(".attention-viewer") || body, st = key ? (AV.state[key] = AV.state[key] || {}) : {};
  if (st.kind !== d.kind) { for (var p in st) { delete st[p]; } st.kind = d.kind; }
  body.textContent = "";
  var title = root.querySelector(".av-title");
  if (title && d.title !== undefined) { title.textContent = d.title; }
  root.setAttribute("data-kind", d.kind);
  var inner = document.createElement("div");
  body.appendChild(inner);
  pictures(d.img, function (pics) {
    d._pics = pics;
    KINDS[d.kind](inner, d, st, function (info) {
      for (var k in info) { root.setAttribute("data-" + k, info[k]); }
      root.setAttribute("data-ready", "1");
    });
  });
};
AV.boot = function (script) {
  var root = script && script.closest ? script.closest(".attention-viewer") : null;
  var all = root ? [root] : document.querySelectorAll(".attention-viewer:not([data-ready])");
  for (var i = 0; i < all.length; i++) {
    var r = all[i], data = r.querySelector("script.av-data"), body = r.querySelector(".av-body");
    if (r.getAttribute("data-ready") || !data || !body) { continue; }
    try { AV.render(body, JSON.parse(data.textContent), r.getAttribute("data-state-key")); }
    catch (err) { body.textContent = "viewer error: " + err; if (window.console) { console.error(err); } }
  }
};
/* a static explorer: its controls choose a precomputed frame; the viewer draws the frame's data */
AV.explorer = function (script) {
  var root = script && script.closest ? script.closest(".attention-explorer-static") : script;
  if (!root || root.getAttribute("data-current")) { return; }
  var data = JSON.parse(root.querySelector("script.ae-data").textContent);
  var inputs = root.querySelectorAll("[data-control]"), counts = root.querySelector(".ae-counts"),
      trace = root.querySelector(".ae-trace"), view = root.querySelector(".attention-viewer"),
      body = view.querySelector(".av-body"), key = view.getAttribute("data-state-key");
  var refs = function (p) {
    if (p.parts) { p.parts.forEach(refs); }
    if (p.img && p.img.ref !== undefined) { p.img = data.images[p.img.ref]; }
    return p;
  };
  var show = function () {
    var k = [];
    for (var i = 0; i < inputs.length; i++) {
      var e = inputs[i], c = data.controls[+e.getAttribute("data-control")], v = +e.value;
      k.push(v);
      var out = root.querySelector('output[data-for="' + e.getAttribute("data-control") + '"]');
      if (out) { out.textContent = c.labels[v]; }
      if (e.type === "range") { e.setAttribute("aria-valuetext", c.labels[v]); }   /* the value the page shows */
    }
    var f = data.frames[k.join(",")];
    if (!f) { return; }
    counts.innerHTML = data.counts[f.c];
    trace.innerHTML = data.tables[f.t];
    AV.render(body, refs(f.p), key);
    root.setAttribute("data-current", k.join(","));
  };
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", show);
    inputs[i].addEventListener("change", show);
  }
  show();
};
/* the website loads the engine once, deferred (the viewers' own copies are left out): start every viewer
   and explorer on the page */
AV.start = function () {
  AV.boot(null);
  var all = document.querySelectorAll(".attention-explorer-static:not([data-current])");
  for (var i = 0; i < all.length; i++) { AV.explorer(all[i]); }
};
