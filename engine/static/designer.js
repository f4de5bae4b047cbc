// The designer's editor page: the YAML editor (CodeMirror, vendored) linted by the
// server's own checker as the designer types, the draft saved as it changes, the
// guided form builder, the previews, the diagram and tables, and the simulation.
// Without this script the page still works: the text area posts the draft.
(function () {
  "use strict";
  var root = document.getElementById("designer");
  if (!root || !window.fetch) return;
  var words = JSON.parse(root.getAttribute("data-words") || "{}");
  var csrf = root.querySelector("input[name=csrf_token]").value;
  var textarea = document.getElementById("yaml-text");
  var revision = parseInt(root.getAttribute("data-revision"), 10) || 0;
  var editor = null;
  var saveTimer = null;
  var saved = textarea.value;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf}
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return {status: resp.status, data: data};
      });
    });
  }

  function say(id, text, bad) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return String(values[k]); });
  }

  function text() { return editor ? editor.getText() : textarea.value; }
  function w(key) { return words[key] || key; }

  // -- tabs ------------------------------------------------------------------------------
  var tabs = root.querySelector(".tabs");
  var shown = "yaml";
  function show(name) {
    shown = name;
    Array.prototype.forEach.call(tabs.querySelectorAll("[role=tab]"), function (b) {
      b.setAttribute("aria-selected", b.getAttribute("data-tab") === name ? "true" : "false");
    });
    Array.prototype.forEach.call(root.querySelectorAll(".tab"), function (panel) {
      panel.hidden = panel.id !== "tab-" + name;
    });
    if (name === "builder") loadBuilder();
    if (name === "outline") loadOutline();
  }
  tabs.hidden = false;
  tabs.addEventListener("click", function (event) {
    var b = event.target.closest("[role=tab]");
    if (b) show(b.getAttribute("data-tab"));
  });
  show("yaml");

  // -- problems ----------------------------------------------------------------------------
  function listProblems(problems, elsewhere) {
    var list = document.getElementById("problems");
    list.textContent = "";
    if (!problems.length) {
      var ok = document.createElement("li");
      ok.className = "ok";
      ok.textContent = words.none;
      list.appendChild(ok);
      return;
    }
    problems.forEach(function (p) {
      var li = document.createElement("li");
      li.className = p.severity;
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("data-line", p.line);
      b.setAttribute("data-col", p.col);
      b.disabled = !p.here;
      b.textContent = p.path + ":" + p.line + ":" + p.col;
      var code = document.createElement("code");
      code.textContent = p.code;
      li.appendChild(b);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(code);
      li.appendChild(document.createTextNode(" " + p.message + (p.hint ? " " + p.hint : "")));
      list.appendChild(li);
    });
    if (elsewhere) {
      var more = document.createElement("li");
      more.className = "note";
      more.textContent = fill(words.elsewhere, {count: elsewhere});
      list.appendChild(more);
    }
  }
  document.getElementById("problems").addEventListener("click", function (event) {
    var b = event.target.closest("button[data-line]");
    if (!b || b.disabled) return;
    var line = parseInt(b.getAttribute("data-line"), 10);
    var col = parseInt(b.getAttribute("data-col"), 10);
    if (editor) { editor.goTo(line, col); return; }
    var lines = textarea.value.split("\n");
    var at = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    textarea.focus();
    textarea.setSelectionRange(at + col - 1, at + col - 1);
  });

  function lint(source) {
    return post(root.getAttribute("data-check"), {text: source}).then(function (r) {
      var problems = (r.data && r.data.problems) || [];
      listProblems(problems, r.data && r.data.elsewhere);
      return problems.filter(function (p) { return p.here; });
    });
  }

  // -- saving the draft --------------------------------------------------------------------
  function save() {
    var current = text();
    if (current === saved) return Promise.resolve();
    say("save-status", words.saving);
    return post(root.getAttribute("data-save"), {text: current, revision: revision})
      .then(function (r) {
        if (r.status !== 200) {
          var why = (r.data && r.data.error && r.data.error.message) || r.status;
          say("save-status", fill(words.unsaved, {why: why}), true);
          return;
        }
        revision = r.data.revision;
        saved = current;
        root.querySelector("input[name=revision]").value = revision;
        say("save-status", fill(words.saved, {revision: revision}));
        listProblems(r.data.problems, r.data.elsewhere);
        refresh();
      });
  }
  function later() {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 700);
  }
  document.getElementById("yaml-form").addEventListener("submit", function (event) {
    event.preventDefault();
    save();
  });

  // Completion of keys from the JSON Schema: the key path above the cursor, by indent.
  var schema = null;
  fetch(root.getAttribute("data-schema"), {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (s) { schema = s; });

  function resolve(node) {
    var seen = 0;
    while (node && node.$ref && seen++ < 10) {
      var parts = node.$ref.replace(/^#\//, "").split("/");
      node = parts.reduce(function (n, k) { return n ? n[k] : null; }, schema);
    }
    return node || {};
  }
  function propertiesOf(node) {
    node = resolve(node);
    var out = {};
    [node].concat(node.oneOf || [], node.anyOf || [], node.allOf || []).forEach(function (n) {
      n = resolve(n);
      Object.keys(n.properties || {}).forEach(function (k) { out[k] = n.properties[k]; });
    });
    return out;
  }
  function child(node, key) {
    var props = propertiesOf(node);
    if (props[key]) return resolve(props[key]);
    node = resolve(node);
    if (node.additionalProperties && typeof node.additionalProperties === "object") {
      return resolve(node.additionalProperties);
    }
    var patterns = node.patternProperties || {};
    var first = Object.keys(patterns)[0];
    return first ? resolve(patterns[first]) : {};
  }
  function complete(source, line, col) {
    if (!schema) return [];
    var lines = source.split("\n");
    var here = lines[line - 1] || "";
    var indent = here.match(/^[ -]*/)[0].length;
    if (col - 1 < indent) indent = col - 1;
    var path = [];
    var siblings = {};
    for (var i = line - 2; i >= 0; i--) {
      var m = lines[i].match(/^(\s*)(- )?([A-Za-z_][\w-]*)\s*:/);
      if (!m) continue;
      var at = m[1].length + (m[2] ? 2 : 0);
      if (at === indent && !path.length) { siblings[m[3]] = true; if (m[2]) indent = -1; }
      if (at < indent) {
        path.unshift({key: m[3], item: !!m[2] && at < indent});
        if (m[2]) path[0].listAt = m[1].length;
        indent = m[2] ? m[1].length : at;
        if (indent === 0 && !m[2]) break;
      }
      if (indent <= 0) break;
    }
    // Keys already written below the cursor at the same level are not offered either.
    var level = (here.match(/^[ -]*/)[0] || "").length;
    for (var j = line; j < lines.length; j++) {
      var below = lines[j].match(/^(\s*)(- )?([A-Za-z_][\w-]*)\s*:/);
      if (!lines[j].trim() || /^\s*#/.test(lines[j])) continue;
      var at2 = lines[j].match(/^\s*/)[0].length;
      if (at2 < level || (below && below[2])) break;
      if (below && at2 === level) siblings[below[3]] = true;
    }
    var node = schema;
    path.forEach(function (p) {
      node = child(node, p.key);
      var n = resolve(node);
      if (n.type === "array" || n.items) node = resolve(n.items);
    });
    var props = propertiesOf(node);
    return Object.keys(props).filter(function (k) { return !siblings[k]; }).map(function (k) {
      return {label: k, detail: (resolve(props[k]).description || "").slice(0, 80)};
    });
  }

  if (window.CaseloopEditor) {
    textarea.hidden = true;
    var holder = document.getElementById("editor");
    holder.hidden = false;
    editor = window.CaseloopEditor.create({
      parent: holder, doc: textarea.value,
      onChange: function (value) { textarea.value = value; later(); },
      lint: lint, complete: complete
    });
  } else {
    textarea.addEventListener("input", function () { later(); lint(textarea.value); });
  }

  // -- preview, outline --------------------------------------------------------------------
  var stateSelect = document.getElementById("preview-state");
  function previewUrl(lang) {
    var url = root.getAttribute("data-preview") + "?lang=" + lang;
    if (stateSelect) url += "&state=" + encodeURIComponent(stateSelect.value);
    return url;
  }
  function reloadPreviews() {
    ["zh", "en"].forEach(function (lang) {
      var frame = document.getElementById("preview-" + lang);
      if (frame) frame.src = previewUrl(lang);
    });
  }
  if (stateSelect) stateSelect.addEventListener("change", reloadPreviews);

  function loadOutline() {
    var box = document.getElementById("outline");
    var lang = document.documentElement.lang.indexOf("zh") === 0 ? "zh" : "en";
    fetch(root.getAttribute("data-outline") + "?lang=" + lang, {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        // Rendered and escaped by the server's template, like any page of this site.
        box.innerHTML = html;
        var diagram = box.querySelector(".diagram[data-diagram]");
        if (diagram && window.mermaid && window.CaseloopEditor) {
          // Natural size, scrolled in its box: a large workflow stays readable.
          window.mermaid.initialize({startOnLoad: false, securityLevel: "strict",
                                     flowchart: {useMaxWidth: false}});
          window.CaseloopEditor.renderDiagram(window.mermaid, diagram,
                                              diagram.getAttribute("data-diagram"));
        }
      });
  }

  function refresh() {
    reloadPreviews();
    if (shown === "outline") loadOutline();
  }

  // -- the guided builder (forms) ------------------------------------------------------------
  var builder = document.getElementById("builder");
  var model = null;
  var applyTimer = null;
  var TYPES = ["text", "textarea", "integer", "decimal", "boolean", "date", "datetime",
               "choice", "multichoice", "email", "phone", "rating", "nps", "ces", "file",
               "user", "reference"];
  var OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "filled", "empty"];

  function loadBuilder() {
    if (!builder) return;
    post(root.getAttribute("data-model"), {text: text()}).then(function (r) {
      if (r.status !== 200) {
        builder.textContent = (r.data.error && r.data.error.message) || String(r.status);
        return;
      }
      model = r.data;
      drawBuilder();
    });
  }

  // One write at a time: each needs the keys the previous one gave new rows.
  var applying = Promise.resolve();
  function applyBuilder() {
    if (applyTimer) clearTimeout(applyTimer);
    applyTimer = setTimeout(function () {
      applying = applying.then(writeModel);
    }, 400);
  }
  function writeModel() {
    return post(root.getAttribute("data-layout"), {text: text(), model: model}).then(function (r) {
      if (r.status !== 200) {
        say("builder-status", (r.data.error && r.data.error.message) || r.status, true);
        return null;
      }
      say("builder-status", "");
      if (editor) editor.setText(r.data.text);
      textarea.value = r.data.text;
      lint(r.data.text);
      save();
      return post(root.getAttribute("data-model"), {text: r.data.text});
    }).then(function (r) {
      // Rows keep their place: take the keys the text gives them now (new rows had none).
      if (!r || r.status !== 200) return;
      r.data.fields.forEach(function (f, i) {
        if (model.fields[i]) model.fields[i].key = f.key;
      });
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "value") node.value = attrs[k];
      else if (k === "checked") node.checked = !!attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  var uid = 0;
  function labelled(labelText, input) {
    var id = "b" + (++uid);
    input.id = id;
    return el("span", {"class": "pair"}, [el("label", {"for": id, text: labelText}), input]);
  }

  function input(value, onChange, type) {
    var i = el("input", {type: type || "text", value: value == null ? "" : String(value)});
    i.addEventListener("input", function () { onChange(i.value); applyBuilder(); });
    return i;
  }

  function select(options, value, onChange) {
    var s = el("select", {}, options.map(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (o[0] === value) opt.selected = true;
      return opt;
    }));
    s.addEventListener("change", function () { onChange(s.value); applyBuilder(); draw(); });
    return s;
  }
  function draw() { setTimeout(drawBuilder, 0); }

  function conditionEditor(f, key, title) {
    var names = model.fields.filter(function (g) { return g.name && g !== f; })
      .map(function (g) { return [g.name, g.name]; });
    var c = f[key];
    var box = el("fieldset", {"class": "condition"}, [el("legend", {text: title})]);
    if (c && c.expr !== undefined) {
      box.appendChild(labelled(w("b_expr"), input(c.expr, function (v) { c.expr = v; })));
      return box;
    }
    var field = select([["", "—"]].concat(names), c ? c.field : "", function (v) {
      f[key] = v ? {field: v, op: (c && c.op) || "==", value: c ? c.value : ""} : null;
    });
    box.appendChild(labelled(title + ": " + w("b_field"), field));
    if (c) {
      box.appendChild(labelled(title + ": " + w("b_operator"), select(OPS.map(function (o) { return [o, o]; }),
        c.op, function (v) { c.op = v; })));
      if (c.op !== "filled" && c.op !== "empty") {
        var shownValue = Array.isArray(c.value) ? c.value.join(", ") : c.value;
        box.appendChild(labelled(title + ": " + w("b_value"), input(shownValue, function (v) {
          c.value = c.op === "in" ? v.split(",").map(function (s) { return s.trim(); })
                                     .filter(Boolean) : v;
        })));
      }
    }
    return box;
  }

  function move(i, by) {
    var j = i + by;
    if (j < 0 || j >= model.fields.length) return;
    var f = model.fields.splice(i, 1)[0];
    model.fields.splice(j, 0, f);
    applyBuilder();
    drawBuilder();
  }

  function drawBuilder() {
    builder.textContent = "";
    builder.appendChild(el("p", {id: "builder-status", role: "status"}));
    var list = el("ol", {"class": "builder-fields"});
    model.fields.forEach(function (f, i) {
      var name = f.name || f.include || f.key;
      var head = el("p", {"class": "field-head"}, [el("strong", {text: name})]);
      var up = el("button", {type: "button", "aria-label": "up " + name, text: "↑"});
      up.addEventListener("click", function () { move(i, -1); });
      var down = el("button", {type: "button", "aria-label": "down " + name, text: "↓"});
      down.addEventListener("click", function () { move(i, 1); });
      var remove = el("button", {type: "button", "aria-label": "remove " + name, text: "✕"});
      remove.addEventListener("click", function () {
        model.fields.splice(i, 1); applyBuilder(); drawBuilder();
      });
      [up, down, remove].forEach(function (b) { head.appendChild(b); });
      var item = el("li", {"class": "builder-field", "data-field": name}, [head]);
      if (f.locked) {
        item.appendChild(el("p", {"class": "note", text: f.why || ""}));
        list.appendChild(item);
        return;
      }
      var grid = el("div", {"class": "grid"});
      grid.appendChild(labelled(w("b_name"), input(f.name, function (v) { f.name = v; })));
      grid.appendChild(labelled(w("b_type"), select(TYPES.map(function (t) { return [t, t]; }), f.type,
        function (v) { f.type = v; })));
      ["en", "zh"].forEach(function (lang) {
        grid.appendChild(labelled(w("b_label") + " " + lang, input(f.label[lang], function (v) {
          f.label[lang] = v;
        })));
        grid.appendChild(labelled(w("b_help") + " " + lang, input((f.help || {})[lang], function (v) {
          f.help = f.help || {en: "", zh: ""}; f.help[lang] = v;
        })));
      });
      var req = el("input", {type: "checkbox", checked: f.required});
      req.addEventListener("change", function () { f.required = req.checked; applyBuilder(); });
      grid.appendChild(labelled(w("b_required"), req));
      ["min_length", "max_length", "min", "max", "pattern"].forEach(function (k) {
        grid.appendChild(labelled(k, input(f[k], function (v) {
          f[k] = v === "" ? null : (k === "pattern" || isNaN(Number(v)) ? v : Number(v));
        })));
      });
      if (f.type === "choice" || f.type === "multichoice") {
        var lines = (f.choices || []).map(function (c) {
          return [c.value, c.label.en, c.label.zh].join(" | ");
        }).join("\n");
        var area = el("textarea", {rows: "4"});
        area.value = lines;
        area.addEventListener("input", function () {
          f.choices = area.value.split("\n").filter(function (l) { return l.trim(); })
            .map(function (l) {
              var p = l.split("|").map(function (s) { return s.trim(); });
              return {value: p[0], label: {en: p[1] || p[0], zh: p[2] || p[1] || p[0]}};
            });
          applyBuilder();
        });
        grid.appendChild(labelled(w("b_choices"), area));
      }
      item.appendChild(grid);
      item.appendChild(conditionEditor(f, "visible_if", "visible_if"));
      item.appendChild(conditionEditor(f, "required_if", "required_if"));
      list.appendChild(item);
    });
    builder.appendChild(list);
    var add = el("button", {type: "button", id: "add-field", text: words.add});
    add.addEventListener("click", function () {
      var n = 1;
      var names = model.fields.map(function (f) { return f.name; });
      while (names.indexOf("field_" + n) !== -1) n++;
      model.fields.push({key: null, locked: false, name: "field_" + n, type: "text",
                         label: {en: "Field " + n, zh: "字段 " + n}, help: {en: "", zh: ""},
                         required: false, required_if: null, visible_if: null, choices: []});
      applyBuilder();
      drawBuilder();
    });
    builder.appendChild(el("p", {"class": "buttons"}, [add]));
  }

  // -- simulation -----------------------------------------------------------------------------
  var pick = document.getElementById("scenario-pick");
  if (pick) pick.addEventListener("change", function () {
    document.getElementById("scenario").value =
      pick.options[pick.selectedIndex].getAttribute("data-text");
  });
  var run = document.getElementById("run");
  if (run) run.addEventListener("click", function () {
    run.disabled = true;
    var lang = document.documentElement.lang.indexOf("zh") === 0 ? "zh" : "en";
    save().then(function () {
      return post(root.getAttribute("data-simulate"),
                  {scenario: document.getElementById("scenario").value, lang: lang});
    }).then(function (r) {
      var d = r.data || {};
      var trace = (d.problems || []).concat(d.lines || []).join("\n");
      document.getElementById("trace").textContent = trace;
      if (d.ok) say("sim-status", words.passed);
      else say("sim-status", fill(words.failed, {why: d.failure || (d.problems || []).join("; ")}),
               true);
    }).finally(function () { run.disabled = false; });
  });
})();
