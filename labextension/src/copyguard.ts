// The copy guard: no more than the policy's number of characters may be copied out of a
// notebook output or a file view (SATRE: no copying data out through the clipboard).
//
// Text reaches the clipboard three ways in JupyterLab, and each is guarded:
//  1. the browser's own copy of a selection (Ctrl+C on an output): the 'copy'/'cut' event;
//  2. handlers that fill the clipboard themselves during that event (CodeMirror in a file
//     editor, JupyterLab's Clipboard.copyToSystem): DataTransfer.setData;
//  3. the asynchronous clipboard API (the "Copy" context-menu commands):
//     navigator.clipboard.writeText / write.
// The source decides whether the limit applies: code the researcher writes in a notebook
// or a console may be copied freely; outputs and opened files may not, beyond the limit.
import { JupyterFrontEnd } from '@jupyterlab/application';

const OUTPUT = '.jp-OutputArea';
const FREE = '.jp-Notebook, .jp-CodeConsole, .jp-Terminal';

export interface ICopyGuard {
  /** How many copies were refused (also in document.body.dataset.trenvCopyBlocked). */
  blocked: number;
}

function elementOf(node: Node | null): Element | null {
  if (!node) {
    return null;
  }
  return node instanceof Element ? node : node.parentElement;
}

/** Does the current selection touch a notebook or console output? */
function selectionInOutput(): boolean {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) {
    return false;
  }
  for (let i = 0; i < selection.rangeCount; i++) {
    const range = selection.getRangeAt(i);
    const common = elementOf(range.commonAncestorContainer);
    if (!common) {
      continue;
    }
    if (common.closest(OUTPUT)) {
      return true;
    }
    for (const area of Array.from(common.querySelectorAll(OUTPUT))) {
      if (range.intersectsNode(area)) {
        return true;
      }
    }
  }
  return false;
}

function selectedText(): string {
  const active = document.activeElement;
  if (active instanceof HTMLTextAreaElement || active instanceof HTMLInputElement) {
    const start = active.selectionStart ?? 0;
    const end = active.selectionEnd ?? 0;
    if (end > start) {
      return active.value.substring(start, end);
    }
  }
  return window.getSelection()?.toString() ?? '';
}

export function installCopyGuard(
  app: JupyterFrontEnd,
  limit: () => number,
  onBlocked: (length: number, limit: number) => void
): ICopyGuard {
  const guard: ICopyGuard = { blocked: 0 };

  /** Is the text being copied now from an output or a file view? */
  const guarded = (): boolean => {
    if (selectionInOutput()) {
      return true;
    }
    const focus = elementOf(window.getSelection()?.anchorNode ?? null) ?? document.activeElement;
    if (focus?.closest(OUTPUT)) {
      return true;
    }
    if (focus?.closest(FREE)) {
      return false;
    }
    // A document other than a notebook (file editor, CSV/JSON/Markdown viewer, ...) is a
    // file view; copies from it (its own hidden textareas included) are guarded.
    const current = app.shell.currentWidget;
    const classes = current?.node.classList;
    return !!classes && classes.contains('jp-Document') && !classes.contains('jp-NotebookPanel');
  };

  const refuse = (length: number): void => {
    guard.blocked += 1;
    document.body.dataset.trenvCopyBlocked = String(guard.blocked);
    onBlocked(length, limit());
  };

  // 1. The browser's own copy of the selection. Capture phase on window: before any other
  // handler, so a refused copy leaves the clipboard empty.
  const onCopy = (event: ClipboardEvent): void => {
    if (!guarded()) {
      return;
    }
    const text = selectedText();
    if (text.length > limit()) {
      event.preventDefault();
      event.stopImmediatePropagation();
      refuse(text.length);
    }
  };
  window.addEventListener('copy', onCopy, true);
  window.addEventListener('cut', onCopy, true);

  // 2. Handlers that write the clipboard data themselves during the event.
  const setData = DataTransfer.prototype.setData;
  DataTransfer.prototype.setData = function (format: string, data: string): void {
    if (typeof data === 'string' && data.length > limit() && guarded()) {
      refuse(data.length);
      return setData.call(this, format, '');
    }
    return setData.call(this, format, data);
  };

  // 3. The asynchronous clipboard API (absent outside secure contexts).
  const clipboard = navigator.clipboard;
  if (clipboard) {
    const writeText = clipboard.writeText.bind(clipboard);
    clipboard.writeText = async (text: string): Promise<void> => {
      if (text.length > limit() && guarded()) {
        refuse(text.length);
        throw new Error(`copy of ${text.length} characters refused by the copy guard`);
      }
      return writeText(text);
    };
    const write = clipboard.write.bind(clipboard);
    clipboard.write = async (items: ClipboardItems): Promise<void> => {
      if (guarded()) {
        for (const item of items) {
          for (const type of item.types) {
            const size = (await item.getType(type)).size;
            if (size > limit()) {
              refuse(size);
              throw new Error(`copy of ${size} bytes refused by the copy guard`);
            }
          }
        }
      }
      return write(items);
    };
  }
  return guard;
}
