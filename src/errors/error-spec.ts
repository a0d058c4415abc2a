/**
 * What a GH_* code means: HTTP status, exit code, whether its message is shown, and the text
 * docs/errors.md prints. Its own file so that the codes-*.ts registries need not import
 * errors.ts, which assembles them into ERRORS.
 */
export interface ErrorSpec {
  http: number;
  exit: number;
  expose: boolean;
  summary: string;
  fix: string;
}
