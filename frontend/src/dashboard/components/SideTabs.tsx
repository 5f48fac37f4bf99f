// The side column's tabbed box: robots, named locations, fleet events.

import { useState } from 'react';
import { EventsPanel } from './EventsPanel';
import { LocationsPanel } from './LocationsPanel';
import { RobotList } from './RobotList';

type Tab = 'robots' | 'locations' | 'events';

export function SideTabs() {
  const [tab, setTab] = useState<Tab>('robots');
  return (
    <div className="side-tabs">
      <div className="tabs tabs-wide" role="tablist">
        {(['robots', 'locations', 'events'] as Tab[]).map((t) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? 'on' : ''} onClick={() => setTab(t)} data-testid={`side-${t}`}>
            {t}
          </button>
        ))}
      </div>
      {tab === 'robots' && <RobotList />}
      {tab === 'locations' && <LocationsPanel />}
      {tab === 'events' && <EventsPanel />}
    </div>
  );
}
