// The server extension's endpoints (trenv/lab/server/endpoints.py), under <server>/trenv/.
// Export requests and the budget are forwarded by the server with its own token.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface ILabConfig {
  project: string;
  policy: string;
  copy_limit_chars: number;
  max_upload_bytes: number;
  max_raw_read_bytes: number;
  export: string;
}

export interface IReason {
  rule: string;
  status: string;
  detail: string;
  cells: number;
}

export interface ISavedOutput {
  name: string;
  kind: string;
  statistic: string;
  status: 'pass' | 'review' | 'fail';
  policy: string;
  created: string;
  files: string[];
  reasons: IReason[];
  detail: Record<string, unknown>;
}

export interface IRequestSummary {
  id: number;
  title: string;
  state: string;
  round: number;
  files: number;
  worst_check: string;
  approvals_required: number;
  reviews_done: number;
  updated_at: string;
}

export interface IBudget {
  dataset: string;
  rho_total: number;
  rho_spent: number;
  rho_remaining: number;
}

export interface IFileRequest {
  path: string;
  justification: string;
}

/** A refusal or failure as the trenv API words it: the problem and how to fix it. */
export class TrenvError extends Error {
  constructor(
    readonly status: number,
    readonly problem: string,
    readonly fix?: string
  ) {
    super(fix ? `${problem} ${fix}` : problem);
  }
}

export async function trenvApi<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'trenv', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  let data: any = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const problem = data?.problem ?? data?.message ?? response.statusText;
    throw new TrenvError(response.status, String(problem), data?.fix);
  }
  return data as T;
}

export const getConfig = (): Promise<ILabConfig> => trenvApi<ILabConfig>('config');

export const getOutputs = async (): Promise<ISavedOutput[]> =>
  (await trenvApi<{ outputs: ISavedOutput[] }>('outputs')).outputs;

export const getRequests = (): Promise<IRequestSummary[]> =>
  trenvApi<IRequestSummary[]>('requests');

export const getBudget = async (): Promise<IBudget[]> =>
  (await trenvApi<{ budgets: IBudget[] }>('budget')).budgets;

export const submitRequest = (
  title: string,
  files: IFileRequest[]
): Promise<IRequestSummary> =>
  trenvApi<IRequestSummary>('requests', {
    method: 'POST',
    body: JSON.stringify({ title, files, submit: true })
  });
