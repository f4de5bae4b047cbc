// Entry point of vendor/codemirror.js: CodeMirror 6 set up for the designer's YAML editor,
// bundled by esbuild into one IIFE that defines window.CaseloopEditor (see README.md here
// for the rebuild). The designer pages never import CodeMirror themselves: they call
//
//   CaseloopEditor.create({parent, doc, onChange, lint, complete, readOnly})
//   CaseloopEditor.renderDiagram(mermaid, element, text)
//
// Lines and columns are 1-based everywhere in this API (as in `caseloop check`); positions
// outside the document are clamped, never thrown on.
//
// Content-Security-Policy: the pages send `style-src 'self'` without 'unsafe-inline', which
// refuses every <style> element and `style` attribute a script adds. What the CSP allows is
// CSSOM (element.style) and constructable stylesheets (document.adoptedStyleSheets), and
// both libraries are routed there:
// - CodeMirror injects its CSS through style-mod, which adopts a stylesheet only for shadow
//   roots and inserts a <style> element in documents: `adoptForDocuments` makes it adopt
//   for documents too.
// - Mermaid draws in a scratch element with a <style> element and style attributes, and its
//   SVG carries both: see "Mermaid under the CSP" below.
import { Annotation, EditorState } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import {
  bracketMatching, syntaxHighlighting, defaultHighlightStyle, indentOnInput, indentUnit,
} from "@codemirror/language";
import { yaml } from "@codemirror/lang-yaml";
import { linter, lintGutter, lintKeymap } from "@codemirror/lint";
import { autocompletion, completionKeymap } from "@codemirror/autocomplete";
import { StyleModule } from "style-mod";

const LINT_DELAY_MS = 300;

// --- CSP: CodeMirror's CSS as an adopted stylesheet -------------------------------------

/** Route style-mod's documents through its adoptedStyleSheets path (used for shadow roots).
 *
 * style-mod decides "<style> element" when the root has a `head`, so documents get a stand-in
 * root without one that reads and writes the document's adoptedStyleSheets. Browsers without
 * constructable stylesheets keep the <style> element (and need 'unsafe-inline' to be styled).
 */
function adoptForDocuments() {
  const supported = typeof document !== "undefined" && "adoptedStyleSheets" in document
    && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype;
  if (!supported) {
    return;
  }
  const stands = new WeakMap();
  const standIn = (doc) => {
    let root = stands.get(doc);
    if (!root) {
      root = {
        ownerDocument: doc,
        get adoptedStyleSheets() { return doc.adoptedStyleSheets; },
        set adoptedStyleSheets(sheets) { doc.adoptedStyleSheets = sheets; },
      };
      stands.set(doc, root);
    }
    return root;
  };
  const mount = StyleModule.mount;
  StyleModule.mount = (root, modules, options) => mount(
    root && root.nodeType === Node.DOCUMENT_NODE ? standIn(root) : root, modules, options);
}
adoptForDocuments();

// --- Positions: 1-based line/col <-> offsets, clamped ------------------------------------

function toInt(value, fallback) {
  const n = Math.floor(Number(value));
  return Number.isFinite(n) ? n : fallback;
}

/** The offset of 1-based (line, col) in doc, clamped into the document and the line. */
function offsetOf(doc, line, col) {
  const number = Math.min(Math.max(toInt(line, 1), 1), doc.lines);
  const info = doc.line(number);
  const column = Math.min(Math.max(toInt(col, 1), 1), info.length + 1);
  return info.from + column - 1;
}

/** The end of the word starting at `from` (to the line's end at most), so that a diagnostic
 * given without an end still underlines something visible. */
function wordEnd(doc, from) {
  const line = doc.lineAt(from);
  const rest = line.text.slice(from - line.from);
  const word = /^\S+/.exec(rest);
  return from + (word ? word[0].length : Math.min(rest.length, 1));
}

// --- Lint -----------------------------------------------------------------------------

function lintSource(lint) {
  return async (view) => {
    const doc = view.state.doc;
    const text = doc.toString();
    let problems;
    try {
      problems = await lint(text);
    } catch (error) {
      console.error("CaseloopEditor: the lint function failed", error);
      return [];
    }
    return (Array.isArray(problems) ? problems : []).map((problem) => {
      const from = offsetOf(doc, problem.line, problem.col);
      let to = problem.endLine != null || problem.endCol != null
        ? offsetOf(doc, problem.endLine ?? problem.line, problem.endCol ?? problem.col)
        : wordEnd(doc, from);
      if (to < from) {
        to = from;
      }
      return {
        from,
        to,
        severity: problem.severity === "warning" ? "warning" : "error",
        message: String(problem.message ?? ""),
      };
    });
  };
}

// --- Completion -----------------------------------------------------------------------

// The text before the cursor when it types a mapping key: indentation, an optional list
// dash, then the key's first characters.
const KEY_START = /^\s*(?:-\s+)?[A-Za-z_][\w-]*$/;

function completionSource(complete) {
  return async (context) => {
    const word = context.matchBefore(/[A-Za-z_][\w-]*/);
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    if (!context.explicit && !(word && KEY_START.test(before))) {
      return null; // typing a value, a comment, punctuation: no popup
    }
    let items;
    try {
      items = await complete(context.state.doc.toString(), line.number,
        context.pos - line.from + 1);
    } catch (error) {
      console.error("CaseloopEditor: the complete function failed", error);
      return null;
    }
    if (!Array.isArray(items) || items.length === 0) {
      return null;
    }
    return {
      from: word ? word.from : context.pos,
      options: items.map((item) => ({
        label: String(item.label),
        detail: item.detail == null ? undefined : String(item.detail),
        info: item.info == null ? undefined : String(item.info),
        type: "property",
      })),
      validFor: /^[\w-]*$/,
    };
  };
}

// --- Theme ----------------------------------------------------------------------------

// Light, in the palette of caseloop.css (its custom properties, with the same fallbacks).
const lightTheme = EditorView.theme({
  "&": {
    color: "var(--ink, #1d2430)",
    backgroundColor: "var(--card, #fff)",
    border: "1px solid var(--line, #d6dbe2)",
    borderRadius: "4px",
    fontSize: "14px",
    height: "100%",
  },
  "&.cm-focused": { outline: "2px solid var(--focus, #ffbf47)", outlineOffset: "1px" },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
    lineHeight: "1.5",
  },
  ".cm-content": { caretColor: "var(--ink, #1d2430)", minHeight: "12em" },
  ".cm-gutters": {
    backgroundColor: "var(--bg, #f6f7f9)",
    color: "var(--muted, #5b6573)",
    borderRight: "1px solid var(--line, #d6dbe2)",
  },
  ".cm-activeLine": { backgroundColor: "#eef3fb" },
  ".cm-activeLineGutter": { backgroundColor: "#e1e9f6", color: "var(--ink, #1d2430)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "#c9daf5",
  },
  ".cm-matchingBracket": { backgroundColor: "#d7ecd9", outline: "1px solid #9cc9a2" },
  ".cm-tooltip": { border: "1px solid var(--line, #d6dbe2)", backgroundColor: "#fff" },
  ".cm-tooltip-autocomplete > ul > li[aria-selected]": {
    backgroundColor: "var(--accent, #1f5fbf)",
    color: "var(--accent-ink, #fff)",
  },
  ".cm-diagnostic-error": { borderLeftColor: "var(--warn, #a4320c)" },
}, { dark: false });

// --- The editor -----------------------------------------------------------------------

// Marks the transactions of setText, so that onChange reports only the user's edits.
const fromSetText = Annotation.define();

/**
 * Create a YAML editor in `parent`.
 *
 * - doc: the initial text.
 * - onChange(text): called after every edit by the user (typing, paste, undo...), not after
 *   setText: the caller already knows that text, and the builder <-> editor sync cannot loop.
 * - lint(text) -> Promise<[{line, col, endLine?, endCol?, severity, message}]>: run 300 ms
 *   after the last edit; the problems are underlined and marked in the gutter. A result that
 *   arrives after a newer edit is dropped.
 * - complete(text, line, col) -> [{label, detail?, info?}] (or a Promise of it): the keys
 *   offered at the cursor; asked on Ctrl-Space and while typing the start of a key.
 * - readOnly: the text can be selected and searched, not changed.
 */
function create({ parent, doc = "", onChange, lint, complete, readOnly = false } = {}) {
  if (!(parent instanceof Element)) {
    throw new TypeError("CaseloopEditor.create needs {parent: an element of the page}");
  }
  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    indentOnInput(),
    indentUnit.of("  "),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    yaml(),
    lightTheme,
    keymap.of([
      ...completionKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...lintKeymap,
      indentWithTab,
    ]),
    EditorState.readOnly.of(Boolean(readOnly)),
  ];
  if (typeof lint === "function") {
    extensions.push(linter(lintSource(lint), { delay: LINT_DELAY_MS }), lintGutter());
  }
  if (typeof complete === "function") {
    extensions.push(autocompletion({ override: [completionSource(complete)] }));
  }
  if (typeof onChange === "function") {
    extensions.push(EditorView.updateListener.of((update) => {
      const user = update.transactions.some((tr) => tr.docChanged && !tr.annotation(fromSetText));
      if (update.docChanged && user) {
        onChange(update.state.doc.toString());
      }
    }));
  }
  const view = new EditorView({
    parent,
    state: EditorState.create({ doc: String(doc), extensions }),
  });

  return {
    /** The editor's whole text. */
    getText() {
      return view.state.doc.toString();
    },
    /** Replace the text as one undoable change (only the part that differs, so the cursor
     * stays where it was when the edit is elsewhere). Does not call onChange. */
    setText(text) {
      const next = String(text);
      const current = view.state.doc.toString();
      if (next === current) {
        return;
      }
      let start = 0;
      const shortest = Math.min(next.length, current.length);
      while (start < shortest && next[start] === current[start]) {
        start += 1;
      }
      let end = 0;
      while (end < shortest - start
        && next[next.length - 1 - end] === current[current.length - 1 - end]) {
        end += 1;
      }
      view.dispatch({
        changes: { from: start, to: current.length - end, insert: next.slice(start, next.length - end) },
        annotations: fromSetText.of(true),
      });
    },
    /** Put the cursor at 1-based (line, col), clamped; scroll it into view; focus. */
    goTo(line, col) {
      const pos = offsetOf(view.state.doc, line, col);
      view.dispatch({
        selection: { anchor: pos },
        effects: EditorView.scrollIntoView(pos, { y: "center" }),
      });
      view.focus();
    },
    focus() {
      view.focus();
    },
    /** Remove the editor from the page. */
    destroy() {
      view.destroy();
    },
  };
}

// --- Mermaid under the CSP ------------------------------------------------------------
//
// mermaid.render() draws in a scratch <div> of the page (it measures the labels there), then
// serializes it and sanitizes the markup with DOMPurify. Under `style-src 'self'` the page
// refuses its <style> element and every `style` attribute it sets or parses: the console
// fills with violations and the labels are measured without their CSS (boxes too big, text
// off centre). While a render runs, `shimsOn` keeps the same styles but applies them the
// ways the CSP allows:
// - setAttribute("style", css) sets element.style.cssText (CSSOM) instead;
// - innerHTML and DOMParser read `style` attributes as data-caseloop-style, then move them
//   into CSSOM;
// - document.createElement("style") returns an empty stand-in, and the CSS written into it
//   is adopted as a constructable stylesheet.
// Other scripts running during those milliseconds see the same, which under this CSP is the
// only way their styles could apply at all. Drawn, the SVG's CSS is adopted for good and its
// style attributes go through CSSOM too (importSvg).

const STYLE_MARK = "data-caseloop-style";
// Elements whose content the HTML serializer writes raw (no &lt;): skipped by the renamer.
const RAW_TEXT = new Set(["style", "script", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"]);
const ATTRIBUTE = /(\s*)([^\s"'>/=]+)(\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?/y;

/** `markup` (HTML as a browser serializes it) with every style="..." attribute renamed to
 * data-caseloop-style="...", so that parsing it asks nothing of the CSP. */
function renameStyleAttributes(markup) {
  let lower = null; // markup in lower case, to find the end of a raw-text element
  let out = "";
  let i = 0;
  while (i < markup.length) {
    const lt = markup.indexOf("<", i);
    if (lt < 0) {
      return out + markup.slice(i);
    }
    out += markup.slice(i, lt);
    i = lt;
    if (markup.startsWith("<!--", i)) {
      const end = markup.indexOf("-->", i + 4);
      const stop = end < 0 ? markup.length : end + 3;
      out += markup.slice(i, stop);
      i = stop;
      continue;
    }
    const tag = /^<([A-Za-z][^\s/>]*)/.exec(markup.slice(i, i + 100));
    if (!tag) { // an end tag, a doctype or a stray "<": copied as they are
      out += "<";
      i += 1;
      continue;
    }
    out += tag[0];
    i += tag[0].length;
    while (i < markup.length) {
      const close = /^\s*\/?>/.exec(markup.slice(i, i + 100));
      if (close) {
        out += close[0];
        i += close[0].length;
        break;
      }
      ATTRIBUTE.lastIndex = i;
      const attr = ATTRIBUTE.exec(markup);
      if (!attr) {
        out += markup[i];
        i += 1;
        continue;
      }
      out += attr[2].toLowerCase() === "style" ? `${attr[1]}${STYLE_MARK}${attr[3] ?? ""}` : attr[0];
      i = ATTRIBUTE.lastIndex;
    }
    const name = tag[1].toLowerCase();
    if (RAW_TEXT.has(name)) {
      lower ??= markup.toLowerCase();
      const end = lower.indexOf(`</${name}`, i);
      const stop = end < 0 ? markup.length : end;
      out += markup.slice(i, stop);
      i = stop;
    }
  }
  return out;
}

/** Move the data-caseloop-style attributes under `root` (a document, a template's content
 * or an element, included) into CSSOM. */
function restoreStyles(root) {
  const scope = root instanceof HTMLTemplateElement ? root.content : root;
  const marked = [...(scope.matches?.(`[${STYLE_MARK}]`) ? [scope] : []),
    ...scope.querySelectorAll(`[${STYLE_MARK}]`)];
  for (const node of marked) {
    const css = node.getAttribute(STYLE_MARK);
    node.removeAttribute(STYLE_MARK);
    if (node.style) {
      node.style.cssText = css;
    }
  }
}

let shimDepth = 0;
let unshim = null;
const scratchCss = []; // [CSS text, its adopted sheet] of the <style> elements of renders

/** Turn the CSP shims on (calls nest; the last `shimsOff` turns them off). */
function shimsOn() {
  shimDepth += 1;
  if (shimDepth > 1) {
    return;
  }
  const proto = Element.prototype;
  const { setAttribute, setAttributeNS } = proto;
  const innerHTML = Object.getOwnPropertyDescriptor(proto, "innerHTML");
  const { parseFromString } = DOMParser.prototype;
  const { createElement } = Document.prototype;
  const styled = (node, name) => node.style && String(name).toLowerCase() === "style";
  proto.setAttribute = function setAttributeShim(name, value) {
    if (styled(this, name)) {
      this.style.cssText = String(value);
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };
  proto.setAttributeNS = function setAttributeNSShim(ns, name, value) {
    if (!ns && styled(this, name)) {
      this.style.cssText = String(value);
      return undefined;
    }
    return setAttributeNS.call(this, ns, name, value);
  };
  Object.defineProperty(proto, "innerHTML", {
    ...innerHTML,
    set(markup) {
      innerHTML.set.call(this, renameStyleAttributes(String(markup)));
      restoreStyles(this);
    },
  });
  DOMParser.prototype.parseFromString = function parseShim(markup, type) {
    const parsed = parseFromString.call(this, renameStyleAttributes(String(markup)), type);
    restoreStyles(parsed);
    return parsed;
  };
  // Mermaid fills a <style> element and puts it in its scratch SVG: Chromium reports any
  // <style> in the page (whatever its type), so it gets an empty stand-in element instead
  // and its CSS is adopted as a stylesheet, for the render and for renderDiagram.
  Document.prototype.createElement = function createElementShim(name, options) {
    if (String(name).toLowerCase() !== "style") {
      return createElement.call(this, name, options);
    }
    const node = createElement.call(this, "caseloop-style");
    let text = "";
    for (const key of ["innerHTML", "textContent"]) { // how mermaid fills it
      Object.defineProperty(node, key, {
        get() { return text; },
        set(css) {
          text = String(css);
          const sheet = new CSSStyleSheet();
          sheet.replaceSync(text);
          scratchCss.push([text, sheet]);
          document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
        },
      });
    }
    return node;
  };
  unshim = () => {
    Object.assign(proto, { setAttribute, setAttributeNS });
    Object.defineProperty(proto, "innerHTML", innerHTML);
    DOMParser.prototype.parseFromString = parseFromString;
    Document.prototype.createElement = createElement;
    const sheets = scratchCss.map(([, sheet]) => sheet);
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !sheets.includes(s));
    scratchCss.length = 0;
  };
}

function shimsOff() {
  shimDepth -= 1;
  if (shimDepth === 0) {
    unshim();
    unshim = null;
  }
}

/** The CSS of the <style> elements mermaid made while drawing the SVG `id`: its rules are
 * all scoped by "#id" (and "#id" is no prefix of another render's id, see renderDiagram). */
function scratchCssOf(id) {
  return scratchCss.filter(([css]) => css.includes(`#${id}`)).map(([css]) => css).join("\n");
}

const diagramSheets = new WeakMap(); // element -> [root, its adopted sheet]
const diagramTurns = new WeakMap(); // element -> the token of its latest renderDiagram call
let diagramCount = 0;

/** Adopt `sheet` (or nothing) for `element`, replacing the one its previous diagram had. */
function adoptDiagramSheet(element, sheet) {
  const previous = diagramSheets.get(element);
  if (previous) {
    const [root, old] = previous;
    root.adoptedStyleSheets = root.adoptedStyleSheets.filter((s) => s !== old);
    diagramSheets.delete(element);
  }
  if (sheet) {
    const found = element.getRootNode();
    const root = "adoptedStyleSheets" in found ? found : document;
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    diagramSheets.set(element, [root, sheet]);
  }
}

/** Mermaid's SVG markup as [a node of this document, the CSS of its <style> elements]: these
 * are taken out and the style attributes go through CSSOM, so the CSP refuses nothing. */
function importSvg(svgText) {
  const template = document.createElement("template");
  template.innerHTML = renameStyleAttributes(svgText); // DOMPurify-sanitized by mermaid
  const svg = template.content.querySelector("svg");
  if (!svg) {
    throw new Error("mermaid returned no <svg>");
  }
  let css = "";
  for (const style of svg.querySelectorAll("style, caseloop-style")) {
    css += `${style.textContent}\n`;
    style.remove();
  }
  const copy = document.importNode(svg, true);
  restoreStyles(copy);
  return [copy, css];
}

/**
 * Draw the mermaid diagram `text` in `element` (its content is replaced).
 *
 * Call `mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})` once first. The
 * diagram's CSS becomes a stylesheet adopted by the document (one per element, replaced on
 * each render). When the text does not parse, the element shows mermaid's message as text
 * (in a <pre class="diagram-error">) and the promise still resolves. When calls overlap for
 * one element, only the latest one draws. Labels are drawn as mermaid's strict level allows,
 * which keeps harmless tags such as <b>: escape label text in the diagram's source
 * (#lt; #gt; #quot; #35; ... — mermaid's entity codes) to show it literally.
 */
async function renderDiagram(mermaid, element, text) {
  if (!mermaid || typeof mermaid.render !== "function") {
    throw new TypeError("renderDiagram needs window.mermaid: load vendor/mermaid.min.js first");
  }
  if (!(element instanceof Element)) {
    throw new TypeError("renderDiagram needs the element to draw in, as its second argument");
  }
  const turn = {};
  diagramTurns.set(element, turn);
  diagramCount += 1;
  const id = `caseloop-diagram-${diagramCount}-svg`;
  let svg;
  let css;
  try {
    shimsOn(); // parsing sanitizes the labels already
    try {
      await mermaid.parse(String(text)); // throws the parser's message, draws nothing
      const result = await mermaid.render(id, String(text));
      [svg, css] = importSvg(result.svg);
      css = `${scratchCssOf(id)}\n${css}`;
    } finally {
      shimsOff();
    }
  } catch (error) {
    document.getElementById(`d${id}`)?.remove(); // mermaid leaves its scratch div on errors
    if (diagramTurns.get(element) !== turn) {
      return;
    }
    const message = document.createElement("pre");
    message.className = "diagram-error";
    message.textContent = error && error.message ? error.message : String(error);
    adoptDiagramSheet(element, null);
    element.replaceChildren(message);
    return;
  }
  if (diagramTurns.get(element) !== turn) {
    return; // a newer call for this element is drawing
  }
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  adoptDiagramSheet(element, sheet);
  element.replaceChildren(svg);
}

window.CaseloopEditor = Object.freeze({ create, renderDiagram });
