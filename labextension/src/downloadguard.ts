// Browser-side downloads that never touch the server: an HTML output the researcher's own
// code displays can hold <a download href="data:..."> (or a blob: URL) and the browser
// would save it without any request to the notebook server, whose refusals cannot see it.
// Clicks on such links are refused here. This is a second line: the server-side lock-down
// (trenv.lab.server) is the wall, and docs/lab.md lists what a browser-side guard cannot do.
const DOWNLOAD_LINK = 'a[download], a[href^="data:" i], a[href^="blob:" i]';

export function installDownloadGuard(onBlocked: (href: string) => void): void {
  let blocked = 0;
  const refuse = (href: string): void => {
    blocked += 1;
    document.body.dataset.trenvDownloadBlocked = String(blocked);
    onBlocked(href);
  };
  const isDownload = (anchor: HTMLAnchorElement): boolean =>
    anchor.hasAttribute('download') || /^(data|blob):/i.test(anchor.getAttribute('href') ?? '');

  // Capture phase on window: before JupyterLab's own link handling.
  window.addEventListener(
    'click',
    event => {
      const target = event.target instanceof Element ? event.target : null;
      const anchor = target?.closest<HTMLAnchorElement>(DOWNLOAD_LINK);
      if (anchor && isDownload(anchor)) {
        event.preventDefault();
        event.stopImmediatePropagation();
        refuse(anchor.href.slice(0, 40));
      }
    },
    true
  );
  // A link clicked from code without being in the page dispatches no event to the window.
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement): void {
    if (isDownload(this)) {
      refuse(this.href.slice(0, 40));
      return;
    }
    click.call(this);
  };
}
