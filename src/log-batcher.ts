import type { DestinationStream } from 'pino'

/** A batch this large is written at once rather than waiting for the timer. */
const MAX_BATCH_CHARS = 64 * 1024

/**
 * Collects log lines and writes them to `destination` in batches: one write per `flushMs` (or per
 * 64 KB) instead of one per request, which is most of what an access line costs under load (see
 * bench/RESULTS.md). Lines are flushed on the timer and by `flush()` (the app calls it on
 * close); once closed, lines go straight through, so nothing logged during shutdown is held back.
 * A `flushMs` of 0 writes every line at once.
 */
export class LogBatcher implements DestinationStream {
  readonly #destination: DestinationStream & { flushSync?: () => void }
  readonly #flushMs: number
  readonly #timer: NodeJS.Timeout
  #pending = ''
  #scheduled = false
  #closed = false

  constructor(destination: DestinationStream, flushMs: number) {
    this.#destination = destination
    this.#flushMs = flushMs
    // One timer for the batcher's life, re-armed with refresh() (which a cleared timer ignores, so it
    // is never cleared before close): no allocation per batch. Its first run finds nothing to write.
    this.#timer = setTimeout(() => this.flush(), flushMs).unref()
  }

  write(line: string): void {
    if (this.#flushMs === 0 || this.#closed) {
      this.#destination.write(line)
      return
    }
    this.#pending += line
    if (this.#pending.length >= MAX_BATCH_CHARS) this.flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      // Held (ref'd) only while lines wait, so a process that is otherwise done still writes them.
      this.#timer.refresh().ref()
    }
  }

  /** Writes what is pending now. */
  flush(): void {
    this.#scheduled = false
    this.#timer.unref()
    if (this.#pending === '') return
    const batch = this.#pending
    this.#pending = ''
    this.#destination.write(batch)
  }

  /** Flushes, hands the destination's own buffer to the OS where it has one, and writes later lines straight through. */
  close(): void {
    clearTimeout(this.#timer)
    this.flush()
    this.#closed = true
    this.#destination.flushSync?.()
  }
}
