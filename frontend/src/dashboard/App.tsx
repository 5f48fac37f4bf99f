// The dashboard layout: header, e-stop banner, map + tasks, side column (robot detail, tabs), toasts.

import { useEffect } from 'react';
import { Toasts } from '../shared/Toasts';
import { EstopBanner, Header } from './components/Header';
import { MapPanel } from './components/MapPanel';
import { RobotDetail } from './components/RobotDetail';
import { SideTabs } from './components/SideTabs';
import { TaskPanel } from './components/TaskPanel';
import { select, ui } from './store/uiStore';

export function App() {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !ui.get().estopDialog && !(e.target instanceof HTMLInputElement)) select(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <div className="app">
      <Header />
      <EstopBanner />
      <main className="layout">
        <div className="col-main">
          <MapPanel />
          <TaskPanel />
        </div>
        <aside className="col-side">
          <RobotDetail />
          <SideTabs />
        </aside>
      </main>
      <Toasts />
    </div>
  );
}
