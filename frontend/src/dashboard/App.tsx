// The dashboard layout: header, open-API and e-stop banners, map + tasks, side column (robot
// detail, tabs), toasts; or, while nobody is signed in to a server that needs it, the sign-in panel.

import { useEffect } from 'react';
import { useObservable } from '../shared/hooks';
import { Toasts } from '../shared/Toasts';
import { EstopBanner, Header, OpenApiBanner } from './components/Header';
import { MapPanel } from './components/MapPanel';
import { RobotDetail } from './components/RobotDetail';
import { SideTabs } from './components/SideTabs';
import { SignInPanel } from './components/SignInPanel';
import { TaskPanel } from './components/TaskPanel';
import { session } from './store/sessionStore';
import { select, ui } from './store/uiStore';

export function App() {
  const { phase } = useObservable(session);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !ui.get().estopDialog && !(e.target instanceof HTMLInputElement)) select(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  if (phase !== 'ready') {
    return (
      <div className="app">
        <Header minimal />
        <SignInPanel />
        <Toasts />
      </div>
    );
  }
  return (
    <div className="app">
      <Header />
      <OpenApiBanner />
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
