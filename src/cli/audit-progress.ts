/** Draws `[#####.....] 512/5000 domains` on one line of a terminal, at most every 100 ms. */
export class ProgressBar {
  private last = 0;
  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly enabled: boolean,
  ) {}

  update(done: number, total: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    this.err.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} domains`);
  }

  clear(): void {
    if (this.enabled) this.err.write('\r\x1b[2K');
  }
}
