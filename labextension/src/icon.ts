import { LabIcon } from '@jupyterlab/ui-components';

// A tray with an outgoing arrow: outputs on their way out through the airlock.
const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">
<g class="jp-icon3" fill="#616161"><path d="M4 14h3l2 3h6l2-3h3v6H4z"/>
<path d="M11 3h2v8h3l-4 4-4-4h3z" transform="rotate(180 12 9)"/></g></svg>`;

export const outputsIcon = new LabIcon({ name: 'trenv-lab:outputs', svgstr: svg });
