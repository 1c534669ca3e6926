import { failure, type GatewayError } from '../errors.js'

/** Pages in a row that may add no new account: TikTok repeats a few accounts across a page boundary, never whole pages. */
const MAX_BARREN_PAGES = 3

/**
 * The rule of every walk over a list's pages (the streaming export and the export jobs): a walk
 * ends where TikTok says there is no more, and gives up after pages in a row that add no new
 * account while TikTok says there are more (an empty page, or the same accounts at the same
 * cursor), which would otherwise be asked for forever, from the cache at no cost and no pause.
 */
export class ListWalk {
  #barren = 0

  /** After a page that added `added` new accounts and has more: the failure that ends the walk, if it must end. */
  afterPage(added: number, cursor: number): GatewayError | undefined {
    this.#barren = added > 0 ? 0 : this.#barren + 1
    if (this.#barren < MAX_BARREN_PAGES) return undefined
    return failure('GW_UPSTREAM_NO_PROGRESS', `TikTok answered ${this.#barren} pages in a row without a new account at cursor ${cursor}; the list stops there`)
  }
}
