import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, YAMLError } from 'yaml';
import { ConfigError, validateConfig, ValidationResult } from './validate';

export interface LoadedConfig extends ValidationResult {
  /** Absolute path of the file that was read. */
  file: string;
  /** True when no config was given and the bundled example was used. */
  usesExample: boolean;
}

/** Location of the example config shipped at the package root. */
export const EXAMPLE_CONFIG = path.resolve(__dirname, '..', '..', '..', 'config.example.yml');

/**
 * Picks the config file: the given path, else ./config.yml, else the example.
 */
export function resolveConfigPath(given: string | undefined, cwd = process.cwd()): { file: string; usesExample: boolean } {
  if (given !== undefined) {
    return { file: path.resolve(cwd, given), usesExample: false };
  }
  const local = path.resolve(cwd, 'config.yml');
  if (fs.existsSync(local)) {
    return { file: local, usesExample: false };
  }
  return { file: EXAMPLE_CONFIG, usesExample: true };
}

/**
 * Describes a YAML syntax error by line, column and parser message. A few messages of
 * yaml 2.9 quote source text after ": " (tags, block scalar headers) or an escape
 * sequence. A password may sit there, so that part is left out.
 */
function describeYamlError(file: string, error: YAMLError, lineCounter: LineCounter): string {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  const reason =
    error.code === 'BAD_DQ_ESCAPE' ? 'invalid escape sequence in a double-quoted string' : error.message.split(': ')[0];
  return `${file}: YAML syntax error at line ${line}, column ${col}: ${reason} (${error.code})`;
}

/** Reads, parses and validates a YAML config file. Throws ConfigError on any problem. */
export function loadConfig(given: string | undefined, cwd = process.cwd()): LoadedConfig {
  const { file, usesExample } = resolveConfigPath(given, cwd);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError([`cannot read config file ${file} (${reason}); pass an existing file with --config`]);
  }
  const lineCounter = new LineCounter();
  const document = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    throw new ConfigError(document.errors.map((error) => describeYamlError(file, error, lineCounter)));
  }
  let parsed: unknown;
  try {
    parsed = document.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // yaml throws here on alias expansion past the limit and on unresolved aliases.
    throw new ConfigError([`${file}: the YAML cannot be expanded (${(error as Error).message.split('\n')[0]}); remove repeated aliases`]);
  }
  const result = validateConfig(parsed);
  return { ...result, file, usesExample };
}
