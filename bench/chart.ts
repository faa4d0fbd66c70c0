/**
 * Draws the results chart as an SVG document: one panel of horizontal bars per figure, one
 * bar per broker at its median, with a line from the minimum to the maximum of the runs.
 */

export interface ChartBar {
  label: string;
  median: number;
  min: number;
  max: number;
  /** Draws the bar in the highlight colour. */
  highlight: boolean;
}

export interface ChartPanel {
  title: string;
  /** Formats a value for the label at the end of a bar. */
  format: (value: number) => string;
  /** A logarithmic axis, for figures whose brokers differ by orders of magnitude. */
  logScale?: boolean;
  bars: ChartBar[];
}

const WIDTH = 880;
const LABEL_WIDTH = 170;
const VALUE_WIDTH = 110;
const BAR_HEIGHT = 18;
const BAR_GAP = 8;
const PANEL_TITLE_HEIGHT = 28;
const PANEL_GAP = 22;
const TOP = 56;
const COLOURS = { highlight: '#c2410c', other: '#64748b', whisker: '#0f172a', text: '#0f172a', grid: '#e2e8f0' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Returns the function that maps a value to a bar length in pixels. */
function axisScale(panel: ChartPanel, plotWidth: number): (value: number) => number {
  const values = panel.bars.flatMap((bar) => [bar.min, bar.median, bar.max]).filter((value) => Number.isFinite(value) && value > 0);
  const top = Math.max(...values, 0);
  if (top === 0) return () => 0;
  if (!panel.logScale) return (value) => (Math.max(0, value) / top) * plotWidth;
  // The axis starts one decade below the smallest value, so the shortest bar stays visible.
  const bottom = 10 ** (Math.floor(Math.log10(Math.min(...values))) - 1);
  const span = Math.log10(top) - Math.log10(bottom);
  return (value) => (value <= bottom ? 0 : ((Math.log10(value) - Math.log10(bottom)) / span) * plotWidth);
}

function panelHeight(panel: ChartPanel): number {
  return PANEL_TITLE_HEIGHT + panel.bars.length * (BAR_HEIGHT + BAR_GAP);
}

/** Returns the SVG document for the panels, with a title and a subtitle line. */
export function renderChart(title: string, subtitle: string, panels: ChartPanel[]): string {
  const visible = panels.filter((panel) => panel.bars.some((bar) => Number.isFinite(bar.median)));
  const height = TOP + visible.reduce((sum, panel) => sum + panelHeight(panel) + PANEL_GAP, 0) + 10;
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold" fill="${COLOURS.text}">${escapeXml(title)}</text>`,
    `<text x="10" y="42" fill="${COLOURS.text}">${escapeXml(subtitle)}</text>`,
  ];
  let y = TOP;
  for (const panel of visible) {
    parts.push(`<text x="10" y="${y + 18}" font-size="13" font-weight="bold" fill="${COLOURS.text}">${escapeXml(panel.title)}</text>`);
    const scale = axisScale(panel, plotWidth);
    let barY = y + PANEL_TITLE_HEIGHT;
    parts.push(`<line x1="${LABEL_WIDTH}" y1="${barY - 4}" x2="${LABEL_WIDTH}" y2="${barY + panel.bars.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP + 4}" stroke="${COLOURS.grid}"/>`);
    for (const bar of panel.bars) {
      const middle = barY + BAR_HEIGHT / 2;
      parts.push(`<text x="${LABEL_WIDTH - 8}" y="${middle + 4}" text-anchor="end" fill="${COLOURS.text}">${escapeXml(bar.label)}</text>`);
      if (Number.isFinite(bar.median)) {
        const colour = bar.highlight ? COLOURS.highlight : COLOURS.other;
        parts.push(`<rect x="${LABEL_WIDTH}" y="${barY}" width="${scale(bar.median).toFixed(1)}" height="${BAR_HEIGHT}" fill="${colour}"/>`);
        if (Number.isFinite(bar.min) && Number.isFinite(bar.max) && bar.max > bar.min) {
          const x1 = LABEL_WIDTH + scale(bar.min);
          const x2 = LABEL_WIDTH + scale(bar.max);
          parts.push(
            `<line x1="${x1.toFixed(1)}" y1="${middle}" x2="${x2.toFixed(1)}" y2="${middle}" stroke="${COLOURS.whisker}" stroke-width="1.5"/>`,
            `<line x1="${x1.toFixed(1)}" y1="${middle - 4}" x2="${x1.toFixed(1)}" y2="${middle + 4}" stroke="${COLOURS.whisker}" stroke-width="1.5"/>`,
            `<line x1="${x2.toFixed(1)}" y1="${middle - 4}" x2="${x2.toFixed(1)}" y2="${middle + 4}" stroke="${COLOURS.whisker}" stroke-width="1.5"/>`,
          );
        }
        const end = LABEL_WIDTH + Math.max(scale(bar.median), Number.isFinite(bar.max) ? scale(bar.max) : 0);
        parts.push(`<text x="${(end + 6).toFixed(1)}" y="${middle + 4}" fill="${COLOURS.text}">${escapeXml(panel.format(bar.median))}</text>`);
      } else {
        parts.push(`<text x="${LABEL_WIDTH + 6}" y="${middle + 4}" fill="${COLOURS.other}">no figure</text>`);
      }
      barY += BAR_HEIGHT + BAR_GAP;
    }
    y += panelHeight(panel) + PANEL_GAP;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
