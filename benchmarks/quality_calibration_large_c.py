"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): science,
technology and software, sport, music and the arts, history, places, hobbies."""

TEXTS = """
# science
Water boils at a lower temperature high in the mountains.
Atoms are mostly empty space.
An electron carries a negative charge.
The periodic table orders the elements by atomic number.
Gravity on the moon is about a sixth of that on Earth.
A year on Mars lasts almost two Earth years.
Jupiter is the largest planet in the solar system.
Saturn's rings are made of ice and rock.
The sun is a medium-sized star.
A light year measures distance, not time.
Black holes bend light around them.
The universe is about fourteen billion years old.
The Earth's core is as hot as the surface of the sun.
Earthquakes happen where tectonic plates meet.
Diamonds and graphite are both pure carbon.
Salt water freezes at a lower temperature than fresh water.
Metals expand when they are heated.
Copper conducts electricity very well.
Friction turns motion into heat.
An object in motion stays in motion unless a force acts on it.
Energy cannot be created or destroyed.
Sound travels faster in water than in air.
The human eye can distinguish millions of colours.
DNA carries the instructions for building an organism.
Genes are passed from parents to their children.
Evolution works through natural selection.
Bacteria can double in number every twenty minutes.
Viruses need a host cell to reproduce.
The immune system remembers germs it has met before.
Red blood cells carry oxygen around the body.
Bones are constantly being rebuilt.
Neurons send signals with electricity and chemicals.
Fungi are more closely related to animals than to plants.
Fossils show how life has changed over millions of years.
Dinosaurs died out about sixty-six million years ago.
Carbon dioxide traps heat in the atmosphere.
Sea levels are rising as the oceans warm.
The ozone layer absorbs ultraviolet light.
The experiment was repeated three times with the same result.
The hypothesis was rejected by the data.
Correlation does not imply causation.
The sample was too small to draw conclusions.
The results were published in a peer-reviewed journal.
A control group receives no treatment.
The telescope can see galaxies billions of light years away.
The microscope magnifies a thousand times.
The probe landed on a comet.
Astronauts lose bone mass in space.
The space station is visible from the ground at night.
A solar eclipse happens when the moon passes in front of the sun.
The comet returns every seventy-six years.
Meteors burn up in the atmosphere.
Pi is an irrational number.
A prime number has exactly two divisors.
The square root of two cannot be written as a fraction.
The sum of the angles of a triangle is one hundred and eighty degrees.
Probability is measured between zero and one.
The average hides how spread out the data are.
Zero was unknown in Europe until the Middle Ages.
A circle's circumference is pi times its diameter.
# technology and software
The app crashes when I open the camera.
Restart your computer to finish installing the update.
My phone battery dies by lunchtime.
The website is down for maintenance.
Clear your browser cache and try again.
The file is too large to attach to an email.
Two-factor authentication makes accounts safer.
Never share your password with anyone.
The printer is out of paper.
The screen cracked when I dropped the tablet.
The router needs to be closer to the living room.
The video keeps buffering.
Bluetooth headphones need to be charged every few days.
The smart speaker misunderstood my question.
The new phone has three cameras.
Backups should be kept in a different place.
The hard drive failed and we lost a year of photos.
Update the app to get the latest features.
The spam filter caught an important email.
Phishing emails pretend to come from your bank.
The virus encrypted all the files on the server.
The keyboard is missing the letter Q.
The mouse stopped working after I spilled coffee on it.
Turn it off and on again.
The loop runs once for every item in the list.
The variable is undefined at this point.
Rename the function so that its purpose is clear.
This class has too many responsibilities.
The tests run in under a minute.
The pull request needs one more review.
Merge the branch after the checks pass.
The bug only happens on Windows.
Pin the version of the library to avoid surprises.
The API returns JSON.
The request failed with a status code of five hundred.
The cache makes repeated requests much faster.
The query returns every customer who ordered last month.
Add an index on the date column.
The table has ten million rows.
The model was trained on a single GPU.
Floating point numbers cannot represent one tenth exactly.
Integer overflow caused the crash.
Threads share memory, processes do not.
The program leaks memory when the window is resized.
The compiler warns about unused variables.
The script reads a CSV file and writes a summary.
Parse the date before comparing it.
Log the error and continue.
Use a dictionary to count the words.
Sort the list by the second element.
The regular expression matches email addresses.
The container starts in two seconds.
Deploy the new version on Monday morning, not Friday evening.
The server responds in fifty milliseconds.
The certificate expired last night.
The domain name was registered twenty years ago.
Open source software is free to read and modify.
The documentation is out of date.
The code review found three bugs.
Comment why, not what.
The algorithm runs in linear time.
Binary search needs a sorted list.
A hash map gives constant-time lookups on average.
Recompile the kernel module after the upgrade.
The laptop fan is very loud.
The battery lasts ten hours.
The game runs at sixty frames per second.
The robot vacuum got stuck under the sofa.
The drone can fly for twenty minutes on one charge.
Self-driving cars still need a human driver.
Electric scooters are everywhere in the city now.
The printer prints everything in pink.
Syntax error on line twelve.
Permission denied.
Update available.
Low battery.
No signal.
Access denied.
Invalid username or password.
Your session has expired.
Saving changes...
Download complete.
Loading, please wait.
Something went wrong.
Are you sure you want to delete this file?
Unsaved changes will be lost.
# sport
The team won the championship for the first time.
He scored twice in the second half.
The match ended in a draw.
The striker missed an open goal.
The coach was sacked after five defeats.
The stadium holds sixty thousand people.
She won gold in the hundred metres.
He broke the world record by a tenth of a second.
The cyclists climbed the mountain in the rain.
The tennis match lasted five hours.
She served an ace to win the set.
The golfer hit a hole in one.
The boxer was knocked out in the third round.
The swimmer trains six hours a day.
The rowing team practises on the river at dawn.
The basketball player is over two metres tall.
The rugby match was very physical.
The cricket match was stopped because of rain.
The horse fell at the last fence.
The skier crashed on the downhill run.
The climbers reached the summit at noon.
The marathon starts at nine in the morning.
I run five kilometres three times a week.
He lifts weights at the gym every evening.
She plays badminton with her colleagues.
The fans booed the referee.
The team bus was greeted by thousands of supporters.
The injury kept him out for the whole season.
The transfer fee was a club record.
The ball hit the post and went out.
The umpire called the ball out.
The race was decided by a photo finish.
The sailing boat capsized in the strong wind.
Surfing is best in the early morning.
The ice rink is open until ten.
The players shook hands after the game.
The goalkeeper was sent off for handball.
Our local club is looking for new members.
The gym offers a free trial week.
Stretch before you go for a run.
Football is the most popular sport in the world.
The Olympic Games are held every four years.
# music and the arts
The band played their greatest hits.
The orchestra tuned up before the concert.
She has been learning the cello since she was six.
He plays the guitar in a rock band.
The choir sang in the cathedral.
The song was number one for ten weeks.
The festival has five stages.
The drummer kept perfect time.
The opera lasted almost four hours.
The pianist played without sheet music.
The new album sounds very different from the last one.
He writes songs about his home town.
The concert hall has wonderful acoustics.
The audience gave a standing ovation.
The play opens at the theatre next month.
The actors rehearsed every evening.
The film won three awards.
The director is famous for long silent scenes.
The novel is set in nineteenth-century Paris.
The poet reads her work in a small bookshop.
The author signed copies of her new book.
The sequel was better than the first book.
The sculpture is made of recycled metal.
The painter used only blue and yellow.
The portrait hangs in the national gallery.
The photographer captured the moment perfectly.
The exhibition of Japanese prints closes on Sunday.
The comic book became a television series.
The dancers moved in perfect harmony.
The ballet tells the story of a swan.
The street artist painted a mural on the bridge.
The documentary follows a family of farmers.
The soundtrack was written by a young composer.
The radio plays old songs on Sunday afternoons.
Tickets for the musical are very expensive.
The choir needs more tenors.
The poem has fourteen lines.
The story has a surprising ending.
# history
The pyramids were built more than four thousand years ago.
The printing press changed how knowledge spread.
The castle was besieged for six months.
The Romans built roads all over Europe.
The city walls were torn down in the nineteenth century.
The First World War began in 1914.
The moon landing was watched by millions on television.
Women won the right to vote after a long campaign.
The empire collapsed after a series of wars.
The explorers were searching for a passage to Asia.
The king was crowned in the abbey.
The revolution overthrew the monarchy.
The monastery was founded in the twelfth century.
The treaty ended the war between the two kingdoms.
The old coins were found buried in a field.
Archaeologists discovered a Roman villa under the car park.
The steam engine powered the first factories.
The telephone was invented in the 1870s.
The railway reached the town in 1850.
The plague returned several times in the Middle Ages.
The cathedral took two hundred years to build.
The ancient Greeks held games in honour of Zeus.
The Aztec capital was built on a lake.
The Ottoman Empire lasted more than six hundred years.
The manuscript was copied by hand by monks.
The battle was fought in thick fog.
The colony declared independence.
The factory town grew quickly during the industrial age.
The old photographs show the street before the war.
The queen reigned for more than sixty years.
The ruins were rediscovered in the jungle.
The castle now belongs to the nation.
# places and geography
The capital lies on both banks of the river.
The village has a church, a pub and a post office.
The city is famous for its canals.
The island has only one road.
The desert stretches for thousands of kilometres.
The highest mountain in Africa is Kilimanjaro.
The Amazon carries more water than any other river.
Iceland has many active volcanoes.
Norway's coast is full of fjords.
The Sahara was once green.
Canada has the longest coastline in the world.
The Dead Sea is so salty that you float.
The old town is a world heritage site.
The harbour is full of fishing boats.
The market square is the heart of the town.
The suburbs have grown into the countryside.
The valley is known for its wine.
The north of the country is much colder.
The border runs along the river.
The town lies at the foot of the mountains.
The lighthouse stands at the end of the pier.
The park is bigger than some towns.
The city has three universities.
Most people in the region speak two languages.
The capital moved to a new city in the last century.
The village empties in winter.
The motorway bypasses the town centre.
The bridge connects the two halves of the city.
# hobbies and crafts
She knits scarves for her friends.
He builds model railways in the loft.
I've started baking my own bread.
We go fishing on the lake every Sunday.
He collects old stamps from all over the world.
She spends her weekends hiking in the hills.
The photography club meets on Wednesdays.
He restores old motorbikes.
She paints watercolours of the coast.
I'm learning to play chess online.
We grow our own vegetables on an allotment.
He brews his own beer in the garage.
The book club is reading a Russian novel.
She does a crossword every morning.
He carves spoons from fallen branches.
I've taken up pottery.
She sews her own clothes.
He plays video games with friends online.
We do a jigsaw puzzle every Christmas.
She keeps bees at the bottom of the garden.
He goes bird watching at the reservoir.
I'm building a bookshelf for the study.
She makes candles and sells them at the market.
He practises the trumpet, much to the neighbours' annoyance.
The gardening club swaps seeds every spring.
She trains her dog for agility competitions.
He flies a kite on the beach.
We play cards every Friday night.
She writes short stories in her spare time.
# cars and machines
The engine makes a strange noise when it is cold.
The car failed its annual inspection.
Check the oil level once a month.
The windscreen wipers need replacing.
The battery is flat again.
The car has done two hundred thousand kilometres.
Electric cars are quiet at low speed.
The charging point is in the basement car park.
He changed the tyre in the pouring rain.
The satnav sent us down a farm track.
The parking sensor beeps when you get close to a wall.
The tractor blocked the road for miles.
The lorry driver took a break at the service station.
The motorbike would not start in the cold.
The brakes squeal when I stop.
The dishwasher beeps three times when it is done.
The lawnmower ran out of petrol.
The lift is stuck between two floors.
The vending machine swallowed my coin.
""".strip()
