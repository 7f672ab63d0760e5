// The "Outputs" side panel: saved outputs with their checks, the export request form, the
// state of earlier requests and the DP budget left. Everything it shows comes from the
// server extension; the release decision is the airlock's (server-side re-checks, checkers).
import { Widget } from '@lumino/widgets';
import {
  IBudget,
  IRequestSummary,
  ISavedOutput,
  TrenvError,
  getBudget,
  getOutputs,
  getRequests,
  submitRequest
} from './api';
import { h } from './dom';
import { outputsIcon } from './icon';

const REFRESH_MS = 20000;

function problemText(error: unknown): string {
  if (error instanceof TrenvError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

export class OutputsPanel extends Widget {
  private outputs: ISavedOutput[] = [];
  private timer: number | undefined;
  private readonly budgetNode = h('div', { className: 'trenv-budget' });
  private readonly outputsNode = h('div', { className: 'trenv-outputs' });
  private readonly requestsNode = h('div', { className: 'trenv-requests' });
  private readonly messageNode = h('div', { className: 'trenv-message', role: 'status' });
  private readonly titleInput = h('input', {
    className: 'trenv-title jp-mod-styled',
    type: 'text',
    maxlength: 300,
    placeholder: 'Title of the export request'
  });
  private readonly submitButton = h(
    'button',
    { className: 'trenv-submit jp-mod-styled jp-mod-accept', type: 'button' },
    'Submit for review'
  );

  constructor() {
    super();
    this.id = 'trenv-outputs-panel';
    this.addClass('trenv-panel');
    this.title.icon = outputsIcon;
    this.title.caption = 'Outputs: checks and export requests';
    const refresh = h(
      'button',
      { className: 'trenv-refresh jp-mod-styled', type: 'button', title: 'Refresh' },
      'Refresh'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this.submitButton.addEventListener('click', () => void this.submit());
    this.node.append(
      h('header', {}, h('h2', {}, 'Outputs'), refresh),
      h(
        'p',
        { className: 'trenv-hint' },
        'Outputs leave only through the airlock. Save them with tre.save(output, name), ' +
          'tick the ones you need, justify each and submit: output checkers review them.'
      ),
      h('h3', {}, 'Saved outputs'),
      this.outputsNode,
      h('h3', {}, 'Ask for release'),
      h('label', {}, 'Title', this.titleInput),
      this.submitButton,
      this.messageNode,
      h('h3', {}, 'Export requests'),
      this.requestsNode,
      h('h3', {}, 'Privacy budget left'),
      this.budgetNode
    );
  }

  protected onAfterShow(): void {
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  protected onAfterHide(): void {
    window.clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const [outputs, requests, budget] = await Promise.allSettled([
      getOutputs(),
      getRequests(),
      getBudget()
    ]);
    if (outputs.status === 'fulfilled') {
      this.renderOutputs(outputs.value);
    } else {
      this.outputsNode.replaceChildren(h('p', { className: 'trenv-error' }, problemText(outputs.reason)));
    }
    if (requests.status === 'fulfilled') {
      this.renderRequests(requests.value);
    } else {
      this.requestsNode.replaceChildren(h('p', { className: 'trenv-error' }, problemText(requests.reason)));
    }
    if (budget.status === 'fulfilled') {
      this.renderBudget(budget.value);
    } else {
      this.budgetNode.replaceChildren(h('p', { className: 'trenv-muted' }, problemText(budget.reason)));
    }
  }

  private renderOutputs(outputs: ISavedOutput[]): void {
    // Keep what the researcher typed across refreshes.
    const kept = new Map<string, { checked: boolean; text: string }>();
    for (const item of Array.from(this.outputsNode.querySelectorAll<HTMLElement>('.trenv-output'))) {
      const box = item.querySelector<HTMLInputElement>('.trenv-include');
      const text = item.querySelector<HTMLTextAreaElement>('.trenv-justification');
      kept.set(item.dataset.name ?? '', { checked: !!box?.checked, text: text?.value ?? '' });
    }
    this.outputs = outputs;
    if (!outputs.length) {
      this.outputsNode.replaceChildren(
        h('p', { className: 'trenv-muted' }, 'No saved outputs yet: tre.save(output, "name").')
      );
      return;
    }
    this.outputsNode.replaceChildren(
      ...outputs.map(output => {
        const before = kept.get(output.name);
        const box = h('input', { className: 'trenv-include', type: 'checkbox' });
        box.checked = before?.checked ?? false;
        const text = h('textarea', {
          className: 'trenv-justification jp-mod-styled',
          rows: 2,
          placeholder: 'Why is it needed, and why is it safe?'
        });
        text.value = before?.text ?? '';
        const reasons = output.reasons.map(r =>
          h(
            'li',
            { className: `trenv-reason trenv-reason-${r.status}` },
            `${r.rule}: ${r.status}${r.cells ? ` (${r.cells} cells)` : ''}${r.detail ? ` — ${r.detail}` : ''}`
          )
        );
        return h(
          'div',
          { className: 'trenv-output', 'data-name': output.name, 'data-status': output.status },
          h(
            'label',
            { className: 'trenv-output-head' },
            box,
            h('span', { className: 'trenv-output-name' }, output.name),
            h('span', { className: `trenv-status trenv-status-${output.status}` }, output.status)
          ),
          h(
            'div',
            { className: 'trenv-muted' },
            `${output.kind} · ${output.statistic} · ${output.policy} · ${output.files.join(', ')}`
          ),
          reasons.length ? h('ul', { className: 'trenv-reasons' }, ...reasons) : null,
          text
        );
      })
    );
  }

  private renderRequests(requests: IRequestSummary[]): void {
    if (!requests.length) {
      this.requestsNode.replaceChildren(h('p', { className: 'trenv-muted' }, 'No export requests yet.'));
      return;
    }
    this.requestsNode.replaceChildren(
      h(
        'ul',
        {},
        ...requests.map(r =>
          h(
            'li',
            { className: 'trenv-request', 'data-id': r.id, 'data-state': r.state },
            h('span', { className: 'trenv-request-title' }, `#${r.id} ${r.title}`),
            h('span', { className: `trenv-state trenv-state-${r.state}` }, r.state.replace(/_/g, ' ')),
            h(
              'span',
              { className: 'trenv-muted' },
              `${r.files} file(s) · round ${r.round} · reviews ${r.reviews_done}/${r.approvals_required}`
            )
          )
        )
      )
    );
  }

  private renderBudget(budgets: IBudget[]): void {
    if (!budgets.length) {
      this.budgetNode.replaceChildren(h('p', { className: 'trenv-muted' }, 'No privacy budget set.'));
      return;
    }
    this.budgetNode.replaceChildren(
      h(
        'ul',
        {},
        ...budgets.map(b =>
          h(
            'li',
            { className: 'trenv-budget-item', 'data-dataset': b.dataset },
            `${b.dataset}: ρ ${b.rho_remaining.toPrecision(3)} left of ${b.rho_total.toPrecision(3)}`
          )
        )
      )
    );
  }

  private say(text: string, kind: 'ok' | 'error'): void {
    this.messageNode.textContent = text;
    this.messageNode.dataset.kind = kind;
  }

  async submit(): Promise<void> {
    const files = [];
    for (const item of Array.from(this.outputsNode.querySelectorAll<HTMLElement>('.trenv-output'))) {
      const box = item.querySelector<HTMLInputElement>('.trenv-include');
      if (!box?.checked) {
        continue;
      }
      const output = this.outputs.find(o => o.name === item.dataset.name);
      const justification = item.querySelector<HTMLTextAreaElement>('.trenv-justification')?.value ?? '';
      if (!justification.trim()) {
        this.say(`Justify ${item.dataset.name}: why is it needed and why is it safe?`, 'error');
        return;
      }
      for (const path of output?.files ?? []) {
        files.push({ path, justification });
      }
    }
    if (!files.length) {
      this.say('Tick at least one output to ask for its release.', 'error');
      return;
    }
    if (!this.titleInput.value.trim()) {
      this.say('Give the request a title.', 'error');
      return;
    }
    this.submitButton.disabled = true;
    try {
      const request = await submitRequest(this.titleInput.value.trim(), files);
      this.say(`Request #${request.id} is ${request.state.replace(/_/g, ' ')}.`, 'ok');
      this.titleInput.value = '';
      for (const box of Array.from(this.outputsNode.querySelectorAll<HTMLInputElement>('.trenv-include'))) {
        box.checked = false;
      }
      await this.refresh();
    } catch (error) {
      this.say(problemText(error), 'error');
    } finally {
      this.submitButton.disabled = false;
    }
  }
}
