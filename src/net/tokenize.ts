/**
 * Splits a request line into arguments the way the original server does. Arguments are
 * separated by spaces, and an argument that starts with `'` runs until the next `'` that
 * ends a word (followed by a space or the end of the line). The quotes are removed and the
 * spaces inside are kept. There is no escape character, so a quoted argument cannot contain
 * `' ` (a quote followed by a space).
 *
 * Returns null when a quoted argument is never closed.
 */
export function tokenize(line: string): string[] | null {
  const args: string[] = [];
  const length = line.length;
  let index = 0;
  while (index < length) {
    if (line.charCodeAt(index) === 0x20) {
      index++;
      continue;
    }
    if (line.charCodeAt(index) === 0x27) {
      const close = findClosingQuote(line, index + 1);
      if (close < 0) {
        return null;
      }
      args.push(line.slice(index + 1, close));
      index = close + 1;
      continue;
    }
    let end = line.indexOf(' ', index);
    if (end < 0) end = length;
    args.push(line.slice(index, end));
    index = end;
  }
  return args;
}

function findClosingQuote(line: string, from: number): number {
  let search = from;
  for (;;) {
    const quote = line.indexOf("'", search);
    if (quote < 0) return -1;
    if (quote + 1 === line.length || line.charCodeAt(quote + 1) === 0x20) return quote;
    search = quote + 1;
  }
}
