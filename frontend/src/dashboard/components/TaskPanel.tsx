// Tasks: open tasks (live status, progress, cancel) and history (recent finished), with per-task history.

import { useState } from 'react';
import { useThrottledVersion } from '../../shared/hooks';
import { useObservable } from '../../shared/hooks';
import { fleet } from '../net/controller';
import { can, session } from '../store/sessionStore';
import { TaskRow } from './TaskRow';

const version = () => fleet.store.version;
const SHOW_MAX = 100;

export function TaskPanel() {
  useThrottledVersion(version, 4);
  useObservable(session);
  const [tab, setTab] = useState<'open' | 'history'>('open');
  const [expanded, setExpanded] = useState<string | null>(null);
  const open = fleet.store.openTasks();
  const done = fleet.store.finishedTasks(50);
  const list = (tab === 'open' ? open : done).slice(0, SHOW_MAX);
  return (
    <section className="panel task-panel" data-testid="tasks">
      <div className="panel-head">
        <h2>Tasks</h2>
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={tab === 'open'} className={tab === 'open' ? 'on' : ''} onClick={() => setTab('open')} data-testid="tab-open">
            Open <span className="badge">{open.length}</span>
          </button>
          <button type="button" role="tab" aria-selected={tab === 'history'} className={tab === 'history' ? 'on' : ''} onClick={() => setTab('history')} data-testid="tab-history">
            History <span className="badge">{done.length}</span>
          </button>
        </div>
      </div>
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              <th>Task</th>
              <th>Status</th>
              <th>Robot</th>
              <th>Goal</th>
              <th>Progress</th>
              <th>Priority</th>
              <th>{tab === 'open' ? 'Created' : 'Finished'}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <TaskRow key={t.id} task={t} expanded={expanded === t.id} onToggle={() => setExpanded(expanded === t.id ? null : t.id)} />
            ))}
            {!list.length && (
              <tr>
                <td colSpan={8} className="empty">
                  {tab === 'open' ? (can('operator') ? 'No open tasks. Click the map or pick a location to send one.' : 'No open tasks.') : 'No finished tasks yet.'}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
