// One task row (status pill, robot, goal, progress, cancel) and, when expanded, its history.

import { useEffect } from 'react';
import { clockTime, num, STATUS_CLASS, shortId } from '../../shared/format';
import type { Task } from '../../shared/types';
import { fleet } from '../net/controller';
import { can } from '../store/sessionStore';
import { goalPoses, isOpen } from '../store/fleetStore';
import { focusOn, select } from '../store/uiStore';
import { ProgressBar } from './ProgressBar';

function goalText(t: Task): string {
  if (t.location) return t.location;
  const pts = goalPoses(t);
  if (pts.length === 1) return `${num(pts[0].x)}, ${num(pts[0].y)}`;
  return `${pts.length} waypoints`;
}

export function TaskRow({ task: t, expanded, onToggle }: { task: Task; expanded: boolean; onToggle: () => void }) {
  const robot = t.assigned_robot ?? (t.robot_id ? `${t.robot_id} (req)` : 'auto');
  return (
    <>
      <tr data-task-id={t.id} data-status={t.status} className={expanded ? 'expanded' : ''} onClick={onToggle}>
        <td className="mono" title={t.id}>
          {shortId(t.id)}
        </td>
        <td>
          <span className={`pill ${STATUS_CLASS[t.status] ?? ''}`}>{t.status}</span>
        </td>
        <td>
          {t.assigned_robot ? (
            <button type="button" className="link" onClick={(e) => (e.stopPropagation(), select(t.assigned_robot ?? null))}>
              {robot}
            </button>
          ) : (
            <span className="muted">{robot}</span>
          )}
        </td>
        <td>
          <button
            type="button"
            className="link"
            title="Show on the map"
            onClick={(e) => {
              e.stopPropagation();
              const g = goalPoses(t).at(-1);
              if (g) focusOn(g.x, g.y);
            }}
          >
            {goalText(t)}
          </button>
        </td>
        <td>
          <ProgressBar value={t.status === 'COMPLETED' ? 1 : t.progress} />
        </td>
        <td className="muted">{t.priority}</td>
        <td className="muted">{clockTime(isOpen(t) ? t.created_ms : t.updated_ms)}</td>
        <td className="actions">
          {isOpen(t) && (
            <button
              type="button"
              className="btn btn-small btn-warn"
              data-action="cancel"
              disabled={!can('operator')}
              title={can('operator') ? 'Cancel this task' : 'Needs the operator role'}
              onClick={(e) => {
                e.stopPropagation();
                void fleet.cancelTask(t.id);
              }}
            >
              Cancel
            </button>
          )}
        </td>
      </tr>
      {expanded && (
        <tr className="detail-row">
          <td colSpan={8}>
            <TaskHistory task={t} />
          </td>
        </tr>
      )}
    </>
  );
}

function TaskHistory({ task }: { task: Task }) {
  useEffect(() => {
    void fleet.taskDetail(task.id);
  }, [task.id, task.status]);
  const h = task.history ?? [];
  return (
    <div className="task-history">
      {task.error && <div className="err">error: {task.error}</div>}
      {h.length ? (
        <ol>
          {h.map((e, i) => (
            <li key={i}>
              <span className="mono muted">{clockTime(e.at_ms)}</span> <span className={`pill ${STATUS_CLASS[e.status] ?? ''}`}>{e.status}</span>
              {e.robot_id && <span> {e.robot_id}</span>}
              {e.note && <span className="muted"> — {e.note}</span>}
            </li>
          ))}
        </ol>
      ) : (
        <span className="muted">loading history…</span>
      )}
    </div>
  );
}

