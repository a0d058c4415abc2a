/**
 * The architecture checker of test/architecture.test.ts: reads every .ts file under a source
 * root with the TypeScript compiler's parser, and reports
 *   - layer:      an import from one top folder into another its rule does not allow;
 *   - cycle:      a cycle in the file-level import graph, with its path;
 *   - no rule:    a file in a top folder the rules do not list;
 *   - unresolved: a relative import that names no file under the root, or a dynamic import
 *                 whose specifier is not a string literal (so it cannot be checked);
 *   - exception:  an exception no import needs any more.
 *
 * Imports seen: `import … from`, `import '…'`, `export … from`, `import x = require('…')`,
 * dynamic `import('…')`, `require('…')` and type positions `import('…').T`. Type-only imports
 * (`import type`, `export type`) count like value imports, for the layers and for cycles: they
 * carry no code, but they couple the design all the same, and a type that two layers need
 * belongs in the lower one.
 */
import ts from 'typescript';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';

export interface ImportRef {
  specifier: string;
  line: number;
  typeOnly: boolean;
  dynamic: boolean;
}

export interface SourceFile {
  /** Relative to the root, with `/`: `ca/routes.ts`. */
  path: string;
  /** The top folder under the root (`ca`), or `.` for a file at the root. */
  area: string;
  text: string;
  imports: ImportRef[];
  /** Dynamic imports and require calls whose argument is not a string literal. */
  unanalysable: number[];
}

/** An import the layers do not allow, accepted on purpose: from and to are folders or files (`config/duration.ts`). */
export interface LayerException {
  from: string;
  to: string;
  reason: string;
}

export interface ArchitectureRules {
  /** For each top folder, the top folders its files may import from (its own is always allowed). */
  allowed: Readonly<Record<string, readonly string[]>>;
  exceptions?: readonly LayerException[];
}

export function readSources(root: string): SourceFile[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((entry) => {
        const path = join(dir, entry);
        return statSync(path).isDirectory()
          ? walk(path)
          : path.endsWith('.ts') && !path.endsWith('.d.ts')
            ? [path]
            : [];
      });
  return walk(root).map((file) => {
    const text = readFileSync(file, 'utf8');
    const path = relative(root, file).split(sep).join('/');
    const { imports, unanalysable } = importsOf(file, text);
    return { path, area: path.includes('/') ? path.split('/')[0]! : '.', text, imports, unanalysable };
  });
}

function importsOf(fileName: string, text: string): { imports: ImportRef[]; unanalysable: number[] } {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: ImportRef[] = [];
  const unanalysable: number[] = [];
  const lineOf = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const add = (node: ts.Node, specifier: ts.Expression | undefined, typeOnly: boolean, dynamic: boolean) => {
    if (specifier && ts.isStringLiteralLike(specifier))
      imports.push({ specifier: specifier.text, line: lineOf(node), typeOnly, dynamic });
    else unanalysable.push(lineOf(node));
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ?? false, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node, node.moduleSpecifier, node.isTypeOnly, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly, false);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      add(node, node.arguments[0], false, true);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      imports.push({ specifier: node.argument.literal.text, line: lineOf(node), typeOnly: true, dynamic: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { imports, unanalysable };
}

/** The file under the root a relative specifier names (`./x.js` is `x.ts` before compiling), or null. */
function resolveImport(root: string, from: string, specifier: string): string | null {
  const base = posix.normalize(posix.join(posix.dirname(from), specifier));
  if (base.startsWith('../') || base === '..') return null;
  const candidates = [base.replace(/\.(m|c)?js$/, '.$1ts'), base, `${base}.ts`, `${base}/index.ts`];
  return (
    candidates.find((c) => c.endsWith('.ts') && existsSync(join(root, c)) && statSync(join(root, c)).isFile()) ?? null
  );
}

const areaOf = (path: string) => (path.includes('/') ? path.split('/')[0]! : '.');
const covers = (pattern: string, path: string) => path === pattern || path.startsWith(`${pattern}/`);

/** Every violation under root, sorted; an empty list is a pass. */
export function checkArchitecture(root: string, rules: ArchitectureRules): string[] {
  const sources = readSources(root);
  const layer: string[] = [];
  const other: string[] = [];
  const graph = new Map<string, string[]>();
  const usedExceptions = new Set<LayerException>();

  for (const file of sources) {
    const edges: string[] = [];
    graph.set(file.path, edges);
    const allowed = rules.allowed[file.area];
    if (!allowed)
      other.push(
        `no rule: ${file.path} is in ${file.area === '.' ? 'the root' : `${file.area}/`}, which the rules do not list`,
      );
    for (const line of file.unanalysable)
      other.push(`unresolved: ${file.path}:${line} imports a computed specifier, which cannot be checked`);
    for (const ref of file.imports) {
      if (!ref.specifier.startsWith('.')) continue;
      const target = resolveImport(root, file.path, ref.specifier);
      if (!target) {
        other.push(
          `unresolved: ${file.path}:${ref.line} imports ${ref.specifier}, which is no .ts file under the root`,
        );
        continue;
      }
      edges.push(target);
      const to = areaOf(target);
      if (!allowed || to === file.area || allowed.includes(to)) continue;
      const exception = rules.exceptions?.find((e) => covers(e.from, file.path) && covers(e.to, target));
      if (exception) {
        usedExceptions.add(exception);
        continue;
      }
      layer.push(
        `layer: ${file.path}:${ref.line} imports ${target}${ref.typeOnly ? ' (type only)' : ''}${ref.dynamic ? ' (dynamic)' : ''}; ${file.area}/ may import ${allowed.length ? allowed.map((a) => `${a}/`).join(', ') : 'no other folder'}`,
      );
    }
  }
  for (const e of rules.exceptions ?? []) {
    if (!usedExceptions.has(e))
      other.push(`exception: ${e.from} → ${e.to} is allowed as an exception, but no import needs it; remove it`);
  }
  const cycles = findCycles(graph).map(
    ({ path, component }) =>
      `cycle: ${path.join(' → ')}${component.length > path.length - 1 ? `; ${component.length} files import each other in all: ${component.join(', ')}` : ''}`,
  );
  return [...layer, ...cycles, ...other];
}

/**
 * One cycle per strongly connected component of the graph (Tarjan): a path that starts and ends
 * at the component's first node in sort order and takes the shortest way back to it, and the
 * component's nodes, sorted.
 */
export function findCycles(
  graph: ReadonlyMap<string, readonly string[]>,
): Array<{ path: string[]; component: string[] }> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const strongConnect = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strongConnect(v);

  return components
    .map((component) => {
      const members = new Set(component);
      const sorted = [...component].sort();
      const start = sorted[0]!;
      // Breadth first from start's successors back to start, inside the component.
      const previous = new Map<string, string>();
      const queue = [start];
      while (queue.length) {
        const v = queue.shift()!;
        for (const w of [...(graph.get(v) ?? [])].sort()) {
          if (!members.has(w) || previous.has(w)) continue;
          previous.set(w, v);
          if (w === start) queue.length = 0;
          else queue.push(w);
          if (w === start) break;
        }
      }
      const path = [start];
      for (let v = previous.get(start)!; v !== start; v = previous.get(v)!) path.unshift(v);
      path.unshift(start);
      return { path, component: sorted };
    })
    .sort((a, b) => a.path[0]!.localeCompare(b.path[0]!));
}
