import { describe, expect, it } from 'vitest';
import { JoinGoal } from '../../coordinator/join-goal.js';

describe('JoinGoal', () => {
  it('waits for every expected worker until some are lost, then for those left', () => {
    const goal = new JoinGoal(3, 1);
    let changes = 0;
    goal.setListener(() => changes++);
    expect([goal.wanted, goal.lost, goal.isUnreachable]).toEqual([3, 0, false]);
    goal.lose();
    expect([goal.wanted, goal.lost, goal.isUnreachable, changes]).toEqual([2, 1, false, 1]);
    goal.lose();
    goal.lose();
    expect([goal.wanted, goal.isUnreachable]).toEqual([0, true]);
    goal.lose(); // never below zero
    expect(goal.wanted).toBe(0);
  });

  it('is unreachable as soon as fewer than the minimum can still join', () => {
    const goal = new JoinGoal(4, 3);
    goal.lose();
    expect(goal.isUnreachable).toBe(false);
    goal.lose();
    expect(goal.isUnreachable).toBe(true);
  });

  it('never asks for more than it expects', () => {
    expect(new JoinGoal(2, 5).minimum).toBe(2);
  });
});
