import type { Logger } from "../platform/logger.js";

/** What the queue needs of a waiting job. */
export interface BackgroundJob {
  readonly kind: string;
  /** Fairness group, such as a guild id. */
  readonly group: string;
  /** Shed only once no other group is left to shed from (moderation, before reactions). */
  readonly shedLast: boolean;
  readonly enqueuedAt: number;
}

export type ShedReason = "full" | "stale";

export interface BackgroundQueueOptions<J extends BackgroundJob> {
  readonly logger: Logger;
  /** Jobs beyond this many waiting are shed: the busiest group's oldest first. */
  readonly maxSize: number;
  /** A job that waited longer than this is shed when its turn comes: a late reaction is noise. */
  readonly maxAgeMs: number;
  readonly now: () => number;
  /** Told of each job shed, after it left the queue: the owner counts it and fails its caller. */
  readonly onShed: (job: J, reason: ShedReason) => void;
}

/**
 * The background work waiting for the model, by fairness group, in round-robin order: a group that was served
 * moves to the back. Over its size it sheds from the busiest group, so one busy server cannot push out everyone
 * else's work; a job that waited too long is shed when its turn comes. The in-process scheduler and the server
 * runtime's admission share it, so both shed the same way.
 */
export class BackgroundQueue<J extends BackgroundJob> {
  private readonly groups = new Map<string, J[]>();
  private count = 0;

  constructor(private readonly options: BackgroundQueueOptions<J>) {}

  get size(): number {
    return this.count;
  }

  /** The groups in round-robin order, as a snapshot that survives the queue changing. */
  groupOrder(): string[] {
    return [...this.groups.keys()];
  }

  /** The first `count` jobs of a group, oldest first. */
  peek(group: string, count: number): readonly J[] {
    return this.groups.get(group)?.slice(0, count) ?? [];
  }

  push(job: J): void {
    this.append(job, "back");
    while (this.count > this.options.maxSize) {
      const shed = this.takeFromBusiestGroup();
      if (!shed) break;
      this.options.logger.debug(
        { jobKind: shed.kind, group: shed.group, queued: this.count },
        "shed: queue full",
      );
      this.options.onShed(shed, "full");
    }
  }

  /** Puts a job taken out back at the front of its group, as if it had never left. */
  requeueFront(job: J): void {
    this.append(job, "front");
  }

  /** Takes a job out; false when it had already left. */
  remove(job: J): boolean {
    const queue = this.groups.get(job.group);
    if (!queue) return false;
    const index = queue.indexOf(job);
    if (index < 0) return false;
    queue.splice(index, 1);
    this.count--;
    if (queue.length === 0) this.groups.delete(job.group);
    return true;
  }

  /** The group was served: it goes to the back of the round. */
  served(group: string): void {
    const rest = this.groups.get(group);
    if (!rest) return;
    this.groups.delete(group);
    this.groups.set(group, rest);
  }

  /** The group's oldest job that has not waited too long, left in the queue; staler ones are shed on the way. */
  freshHead(group: string): J | undefined {
    for (let job = this.groups.get(group)?.[0]; job; job = this.groups.get(group)?.[0]) {
      const waited = this.options.now() - job.enqueuedAt;
      if (waited <= this.options.maxAgeMs) return job;
      this.remove(job);
      this.options.logger.debug({ jobKind: job.kind, group, waitedMs: waited }, "shed: waited too long");
      this.options.onShed(job, "stale");
    }
    return undefined;
  }

  /** The first group in the round with a fresh job gives it up and moves to the back. */
  takeNext(): J | undefined {
    for (const group of this.groupOrder()) {
      const job = this.freshHead(group);
      if (!job) continue;
      this.remove(job);
      this.served(group);
      return job;
    }
    return undefined;
  }

  /** Empties the queue and returns what waited. */
  drain(): J[] {
    const all = [...this.groups.values()].flat();
    this.groups.clear();
    this.count = 0;
    return all;
  }

  /** Every waiting job, without taking any out. */
  all(): J[] {
    return [...this.groups.values()].flat();
  }

  private append(job: J, end: "front" | "back"): void {
    const queue = this.groups.get(job.group);
    if (!queue) this.groups.set(job.group, [job]);
    else if (end === "back") queue.push(job);
    else queue.unshift(job);
    this.count++;
  }

  /**
   * The oldest job of the group with the most waiting. Groups of shed-last work are taken from only when no other
   * group is left.
   */
  private takeFromBusiestGroup(): J | undefined {
    let busiest: J[] | undefined;
    const last = (queue: readonly J[]) => queue[0]?.shedLast === true;
    for (const queue of this.groups.values()) {
      const better =
        !busiest ||
        (last(busiest) && !last(queue)) ||
        (last(busiest) === last(queue) && queue.length > busiest.length);
      if (better) busiest = queue;
    }
    const job = busiest?.[0];
    if (job) this.remove(job);
    return job;
  }
}
