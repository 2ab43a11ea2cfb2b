/**
 * Output batching: the replies produced while one read chunk is processed leave in one socket
 * write when the chunk is done, instead of one write (a syscall) per reply.
 */
export interface PacketWriter {
  write(packet: Buffer): void;
  /** Several packets that belong together (edits + final reply). */
  writeMany(packets: Buffer[]): void;
}

export class Outbox {
  private readonly held: Buffer[] = [];
  private collecting = false;

  constructor(private readonly io: PacketWriter) {}

  /** Runs `work`, holding every packet it sends, then writes them together. */
  collect(work: () => void): void {
    this.collecting = true;
    try {
      work();
    } finally {
      this.collecting = false;
      this.flush();
    }
  }

  /** Writes a packet now, or at the end of collect(). */
  send(packet: Buffer): void {
    if (this.collecting) this.held.push(packet);
    else this.io.write(packet);
  }

  sendMany(packets: Buffer[]): void {
    if (this.collecting) this.held.push(...packets);
    else this.io.writeMany(packets);
  }

  /** Writes what is held. */
  flush(): void {
    const n = this.held.length;
    if (n === 0) return;
    // Emptied before writing: a write past the write-buffer limit ends the session, whose
    // finish() flushes again, and must find nothing left to send twice.
    if (n === 1) {
      const packet = this.held[0]!;
      this.held.length = 0;
      this.io.write(packet);
    } else {
      this.io.writeMany(this.held.splice(0));
    }
  }
}
