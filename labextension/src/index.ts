// trenv in JupyterLab: the Outputs side panel and the copy guard. Downloads are switched
// off by the server (trenv.lab.server) and their menu items by page_config.json; see
// docs/lab.md.
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { getConfig } from './api';
import { installCopyGuard } from './copyguard';
import { installDownloadGuard } from './downloadguard';
import { OutputsPanel } from './panel';

const SHOW_OUTPUTS = 'trenv:show-outputs';
// Until the server's limit arrives, nothing longer than this is copied out (fail closed).
const LIMIT_BEFORE_CONFIG = 0;

const outputsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'trenv-lab:outputs',
  description: 'The Outputs panel: checks of saved outputs, export requests, DP budget.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    const panel = new OutputsPanel();
    app.shell.add(panel, 'left', { rank: 150 });
    app.commands.addCommand(SHOW_OUTPUTS, {
      label: 'Show Outputs (export requests)',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

const copyGuardPlugin: JupyterFrontEndPlugin<void> = {
  id: 'trenv-lab:copy-guard',
  description:
    'Refuses copying more than the policy allows out of outputs and file views, and ' +
    'download links made in the browser (data: and blob: URLs).',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    let limit = LIMIT_BEFORE_CONFIG;
    installCopyGuard(
      app,
      () => limit,
      (length, max) =>
        Notification.warning(
          `Copy refused: ${length} characters selected, at most ${max} may be copied out of ` +
            'outputs and files. Results leave through the airlock: tre.save(...) and the ' +
            'Outputs panel.',
          { autoClose: 8000 }
        )
    );
    installDownloadGuard(() =>
      Notification.warning(
        'Download refused: files leave the research environment only through the airlock ' +
          '(tre.save(...) and the Outputs panel).',
        { autoClose: 8000 }
      )
    );
    getConfig()
      .then(config => {
        limit = config.copy_limit_chars;
        document.body.dataset.trenvCopyLimit = String(limit);
      })
      .catch(reason => console.error('trenv: no copy limit from the server', reason));
  }
};

export default [outputsPlugin, copyGuardPlugin];
