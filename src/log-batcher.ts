import pino, { type DestinationStream } from 'pino'

/** A batch this large is written at once rather than waiting for the timer. */
const BATCH_BYTES = 64 * 1024
/** The most UTF-8 bytes one UTF-16 code unit of a line can take. */
const MAX_BYTES_PER_CHAR = 3

/** Where batches go: they are bytes already, and are handed over as such (a stream keeps the Buffer it is given). */
export interface BatchDestination {
  write(chunk: Buffer): unknown
  flushSync?: () => void
}

/**
 * pino's destination for a file descriptor or path, taking Buffers and writing each batch at once.
 * In its default mode it turned a batch back into a string, measured it twice and encoded it again;
 * written asynchronously, each batch was a round trip through libuv's thread pool. Either cost a
 * cache hit more than copying its line into the batch did (docs/architecture.md, "The cost of a
 * cache hit"). A synchronous write of one batch per 64 KB or per flush interval is what pino's own
 * default does for each line.
 */
export function logDestination(dest: number | string): BatchDestination {
  // sonic-boom's types know only its default mode's strings.
  return pino.destination({ dest, sync: true, contentMode: 'buffer' }) as unknown as BatchDestination
}

/**
 * Collects log lines and writes them to `destination` in batches: one write per `flushMs` (or per
 * 64 KB) instead of one per request, which is most of what an access line costs under load (see
 * docs/architecture.md, "The cost of a cache hit"). Lines are flushed on the timer and by
 * `flush()` (the app calls it on close); once closed, lines go straight through, so nothing logged
 * during shutdown is held back.
 * A `flushMs` of 0 writes every line at once. Each line is copied into the batch's buffer as it
 * comes: kept as strings until the flush, lines survived garbage collections (and were copied by
 * them), which made an access line cost a cache hit several times what building it did.
 */
export class LogBatcher implements DestinationStream {
  readonly #destination: BatchDestination
  readonly #flushMs: number
  readonly #timer: NodeJS.Timeout
  readonly #batch = Buffer.allocUnsafeSlow(BATCH_BYTES)
  #length = 0
  #scheduled = false
  #closed = false

  constructor(destination: BatchDestination, flushMs: number) {
    this.#destination = destination
    this.#flushMs = flushMs
    // One timer for the batcher's life, re-armed with refresh() (which a cleared timer ignores, so it
    // is never cleared before close): no allocation per batch. Its first run finds nothing to write.
    this.#timer = setTimeout(() => this.flush(), flushMs).unref()
  }

  write(line: string): void {
    const batched = this.#flushMs !== 0 && !this.#closed
    const maxBytes = line.length * MAX_BYTES_PER_CHAR
    if (batched && this.#length + maxBytes > BATCH_BYTES) this.flush()
    // Unbatched, or a line larger than a batch alone: written as it comes.
    if (!batched || maxBytes > BATCH_BYTES) {
      this.#destination.write(Buffer.from(line))
      return
    }
    this.#length += this.#batch.write(line, this.#length)
    if (!this.#scheduled) {
      this.#scheduled = true
      // Held (ref'd) only while lines wait, so a process that is otherwise done still writes them.
      this.#timer.refresh().ref()
    }
  }

  /** Writes what is pending now. */
  flush(): void {
    this.#scheduled = false
    this.#timer.unref()
    if (this.#length === 0) return
    // A copy: the batch's buffer is filled again before the destination has written what it was given.
    const batch = Buffer.copyBytesFrom(this.#batch, 0, this.#length)
    this.#length = 0
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
