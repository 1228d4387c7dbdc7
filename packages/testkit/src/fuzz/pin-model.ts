import { PAGE_SIZE } from '@svasim/kernel';
import { MmModel, type PageModel } from './mm-model';

/**
 * What a pinned page is, as the model sees it:
 *  - 'private': a private anonymous page; GUP pins anonymous pages exclusive, so the pinning
 *    process's mapping and the pin see the same bytes for as long as the mapping stays;
 *  - 'shared': a page of a shared-memory object; every mapping of the object sees it;
 *  - 'zero': the shared zero page (a read-only pin of a never-written private page), never
 *    counted as pinned.
 */
export type PinKind = 'private' | 'shared' | 'zero';

/** One pinned 4 KiB page of a pin set. */
export interface PinnedPage {
  /** Address the pinning process pinned it at. */
  va: number;
  /** The pfn pin_user_pages returned. */
  pfn: number;
  kind: PinKind;
  /** 'private': the model's page the pin was taken on (its identity tells whether it is still mapped). */
  page?: PageModel;
  /**
   * 'private': the byte array of that page (made at pin time). The process's writes go into it
   * while the page stays mapped; once unmapped (munmap, MAP_FIXED, MADV_DONTNEED, exit) the model
   * forgets it and it keeps the last bytes, which is what the pinned page must keep holding.
   */
  data?: Uint8Array;
  /** 'shared': the object and page index. */
  obj: number;
  objIdx: number;
}

/** One successful pin_user_pages call, held until unpin_user_pages. */
export interface PinSet {
  id: number;
  /** The pinning process's slot (the process may have exited since). */
  slot: number;
  longterm: boolean;
  write: boolean;
  /** The pages array exactly as pin_user_pages filled it (what unpin_user_pages gets back). */
  pfns: Int32Array;
  pages: PinnedPage[];
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/**
 * PinModel - MmModel plus the pins held: per pin set, the pinning process and the pages with what
 * they must keep holding. Pins survive munmap, MADV_DONTNEED and exit of the pinning process; the
 * page is freed only by the last unpin.
 */
export class PinModel extends MmModel {
  readonly pinSets: PinSet[] = [];
  private nextPin = 1;

  addPinSet(set: Omit<PinSet, 'id'>): PinSet {
    const s = { ...set, id: this.nextPin++ };
    this.pinSets.push(s);
    return s;
  }

  removePinSet(set: PinSet): void {
    const i = this.pinSets.indexOf(set);
    if (i >= 0) this.pinSets.splice(i, 1);
  }

  /** attached - is a private pinned page still the page its process maps at pp.va? */
  attached(set: PinSet, pp: PinnedPage): boolean {
    if (pp.kind !== 'private') return false;
    const pg = this.procs[set.slot]?.pages.get(pp.va);
    return pg !== undefined && pg === pp.page && pg.data === pp.data;
  }

  /** pinBytes - what the pinned page must hold now. */
  pinBytes(pp: PinnedPage): Uint8Array {
    if (pp.kind === 'private') return pp.data!;
    if (pp.kind === 'shared') return this.objects.get(pp.obj)!.get(pp.objIdx) ?? ZERO_PAGE;
    return ZERO_PAGE;
  }

  /** Every pinned page that counts as a pin (the zero page does not), over every set. */
  *countedPins(): Generator<[PinSet, PinnedPage]> {
    for (const s of this.pinSets) for (const pp of s.pages) if (pp.kind !== 'zero') yield [s, pp];
  }
}
