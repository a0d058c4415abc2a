/**
 * CONTRIBUTING.md's rule for commit messages, checked on the history itself: since the rule was
 * written, every subject is at most 72 characters (so `git log --oneline` and the forges show it
 * whole) and every commit has a body that says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The last commit before the rule; the commits after it keep it. */
const RULE_SINCE = 'e3f4ad04c4d4a9529805c371b49bf11c9d51adb9';

const git = (args: string[]) => execFileSync('git', args, { cwd: REPO, encoding: 'utf8' });

/** The commits the rule covers; only a shallow clone, which lacks the base commit, checks HEAD alone. */
function coveredCommits(): string[] {
  const known = spawnSync('git', ['cat-file', '-e', `${RULE_SINCE}^{commit}`], { cwd: REPO }).status === 0;
  // A base that a full clone does not have is a typo here, not a reason to check less.
  if (!known) assert.equal(git(['rev-parse', '--is-shallow-repository']).trim(), 'true', `no commit ${RULE_SINCE}`);
  const range = known ? [`${RULE_SINCE}..HEAD`] : ['-1', 'HEAD'];
  return git(['rev-list', '--no-merges', ...range])
    .split('\n')
    .filter(Boolean);
}

test('commit-subjects-are-at-most-72-characters-with-a-body-that-says-why', () => {
  const problems: string[] = [];
  for (const sha of coveredCommits()) {
    const [subject = '', ...rest] = git(['log', '-1', '--format=%B', sha]).split('\n');
    const body = rest.join('\n').trim();
    if ([...subject].length > 72) problems.push(`${sha.slice(0, 8)}: subject of ${[...subject].length} characters`);
    if (body === '') problems.push(`${sha.slice(0, 8)}: no body ("${subject}")`);
  }
  assert.deepEqual(problems, [], 'see CONTRIBUTING.md, "Commits"');
});
