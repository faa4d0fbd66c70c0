import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultConfig } from '../src/config/validate';
import { COMMANDS } from '../src/protocol/commands';
import { ALL_ERROR_CODES } from '../src/protocol/errors';

// Tests compile to dist/test, so the repository root is two folders up.
const ROOT = path.resolve(__dirname, '..', '..');

const docs = suite<{ protocol: string; readme: string }>('docs');

docs.before((context) => {
  context.protocol = fs.readFileSync(path.join(ROOT, 'docs', 'PROTOCOL.md'), 'utf8');
  context.readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
});

docs('PROTOCOL.md lists every error code', ({ protocol }) => {
  assert.ok(ALL_ERROR_CODES.length > 0, 'ALL_ERROR_CODES is empty');
  for (const code of ALL_ERROR_CODES) {
    assert.ok(protocol.includes(`\`${code}\``), `error code \`${code}\` is missing from docs/PROTOCOL.md`);
  }
});

docs('PROTOCOL.md documents every command', ({ protocol }) => {
  const headings = protocol.split('\n').filter((line) => /^#{2,4} /.test(line));
  for (const command of COMMANDS) {
    // A command heading names the command in backticks, alone or followed by its arguments.
    const named = headings.some((heading) => heading.includes(`\`${command.name}\``) || heading.includes(`\`${command.name} `));
    assert.ok(named, `command ${command.name} has no heading in docs/PROTOCOL.md`);
  }
});

docs('PROTOCOL.md shows the command list that HELP replies', ({ protocol }) => {
  const listed = JSON.stringify(COMMANDS.filter((command) => command.listed).map((command) => command.name));
  assert.ok(protocol.includes(`\n${listed}\n`), `docs/PROTOCOL.md lacks the HELP reply ${listed}`);
});

docs('README documents every config key', ({ readme }) => {
  for (const key of Object.keys(defaultConfig())) {
    assert.ok(readme.includes(`\`${key}\``), `config key \`${key}\` is missing from README.md`);
  }
});

docs.run();
